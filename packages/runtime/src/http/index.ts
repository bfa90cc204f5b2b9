export {
  createEgressDispatcher,
  describeProxy,
  type EgressProxySettings,
  egressProxySettings,
  installEgressProxy,
} from './egress.js';
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
