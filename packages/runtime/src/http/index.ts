export {
  BadRequestError,
  type FieldError,
  InvalidBodyError,
  PROBLEM_CONTENT_TYPE,
  type ProblemBody,
  ProblemError,
  sendProblem,
  UnauthorizedError,
} from './problem.js';
