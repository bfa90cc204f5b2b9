export {
  BadRequestError,
  type FieldError,
  fastifyClientProblem,
  InvalidBodyError,
  internalProblem,
  PayloadTooLargeError,
  PROBLEM_CONTENT_TYPE,
  type ProblemBody,
  ProblemError,
  sendProblem,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from './problem.js';
