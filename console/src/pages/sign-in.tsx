import { type FormEvent, useState } from "react";
import { Link, useLocation, useNavigate } from "react-router";
import { useSignIn, useSignUp } from "../session";
import { FormError } from "../ui";

function useAfterSignIn() {
  const navigate = useNavigate();
  const from = (useLocation().state as { from?: string } | null)?.from;
  return () => navigate(from && from !== "/sign-in" ? from : "/", { replace: true });
}

export function SignInPage() {
  const signIn = useSignIn();
  const done = useAfterSignIn();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    signIn.mutate({ email, password }, { onSuccess: done });
  };
  return (
    <main id="main" className="container narrow">
      <h1>Sign in to Agent Hub</h1>
      <form onSubmit={submit}>
        <label>
          Email
          <input type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Password
          <input
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <FormError error={signIn.error} />
        <button type="submit" aria-busy={signIn.isPending} disabled={signIn.isPending}>
          Sign in
        </button>
      </form>
      <p>
        New here? <Link to="/sign-up">Create an account</Link>
      </p>
    </main>
  );
}

export function SignUpPage() {
  const signUp = useSignUp();
  const done = useAfterSignIn();
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    signUp.mutate({ name, email, password }, { onSuccess: done });
  };
  return (
    <main id="main" className="container narrow">
      <h1>Create your account</h1>
      <form onSubmit={submit}>
        <label>
          Name
          <input autoComplete="name" required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label>
          Email
          <input type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Password
          <input
            type="password"
            autoComplete="new-password"
            required
            minLength={8}
            maxLength={128}
            aria-describedby="password-hint"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
          <small id="password-hint">At least 8 characters.</small>
        </label>
        <FormError error={signUp.error} />
        <button type="submit" aria-busy={signUp.isPending} disabled={signUp.isPending}>
          Create account
        </button>
      </form>
      <p>
        Already have an account? <Link to="/sign-in">Sign in</Link>
      </p>
    </main>
  );
}
