/** The grant-evaluation engine: pure functions, no I/O. */
export {
  defaultConditionRegistry,
  ipRangeCondition,
  maxSpendPerDayCondition,
  parseIpAddress,
  timeWindowCondition,
  validateConditions,
} from "./conditions";
export { evaluateGrants, explainGrants } from "./evaluate";
export { grantSpecificity, matchPattern, specificity } from "./pattern";
export type {
  ConditionEvaluator,
  ConditionOutcome,
  ConditionRegistry,
  Decision,
  Effect,
  Explanation,
  GrantRule,
  MatchedGrant,
  RequestContext,
} from "./types";
