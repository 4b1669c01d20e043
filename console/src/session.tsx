/**
 * Who is signed in. The console uses the API's own session: better-auth sets its cookie on sign-in and
 * sign-up, and every `/api` call sends it (same origin).
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { ApiError, api } from "./api";
import type { Schema } from "./schemas";

export type Me = Schema<"UserProfile">;

export function useMe() {
  return useQuery({
    queryKey: ["me"],
    queryFn: async (): Promise<Me | null> => {
      try {
        return await api<Me>("GET", "/api/me");
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return null;
        throw e;
      }
    },
    staleTime: 60_000,
  });
}

export function useSignIn() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: { email: string; password: string }) => api("POST", "/api/auth/sign-in/email", body),
    onSuccess: () => client.resetQueries(),
  });
}

export function useSignUp() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: { name: string; email: string; password: string }) =>
      api("POST", "/api/auth/sign-up/email", body),
    onSuccess: () => client.resetQueries(),
  });
}

export function useSignOut() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: () => api("POST", "/api/auth/sign-out", {}),
    onSuccess: () => client.resetQueries(),
  });
}
