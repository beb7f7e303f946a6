import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, isLarderError } from '../index.js';
import { ServiceError, ServiceErrorCode } from './errors.js';

/** The body of every error response. */
export type ErrorBody = { error: { code: string; message: string } };

/** Larder errors caused by what the client sent: they are the client's to fix, so 400. */
const LARDER_INPUT_CODES: ReadonlySet<string> = new Set([
  ErrorCode.InvalidKey,
  ErrorCode.InvalidTenant,
  ErrorCode.InvalidNamespace,
  ErrorCode.InvalidTag,
  ErrorCode.InvalidTtl,
  ErrorCode.InvalidValue,
  ErrorCode.ValueTooLarge,
]);

/** How one error is answered. `log` marks the ones that are our fault, not the client's. */
type Mapped = { status: number; code: string; message: string; log: boolean };

/** Maps any thrown value to a status and a client-safe body. Exported for tests. */
export function mapError(error: unknown): Mapped {
  if (error instanceof ServiceError) {
    return {
      status: error.statusCode,
      code: error.code,
      message: error.message,
      log: error.statusCode >= 500,
    };
  }
  if (isLarderError(error)) {
    if (LARDER_INPUT_CODES.has(error.code)) {
      return { status: 400, code: error.code, message: error.message, log: false };
    }
    if (error.code === ErrorCode.Closed) {
      return {
        status: 503,
        code: ServiceErrorCode.Unavailable,
        message: 'The service is shutting down',
        log: false,
      };
    }
    return internal();
  }
  if (isFastifyClientError(error)) {
    // Fastify's schema validation errors carry `validation`; other 4xx errors (malformed JSON,
    // unsupported media type, body too large) keep their own FST_ code and status.
    const code =
      error.validation !== undefined ? ServiceErrorCode.Validation : (error.code ?? 'E_BAD_REQUEST');
    return { status: error.statusCode, code, message: error.message, log: false };
  }
  return internal();
}

/** Fastify's error handler for the whole app: every error is mapped here, once. */
export function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): ErrorBody {
  const mapped = mapError(error);
  if (mapped.log) request.log.error({ err: error }, 'request failed');
  reply.code(mapped.status);
  return { error: { code: mapped.code, message: mapped.message } };
}

/**
 * Errors Fastify raises before routing (a malformed URL, a path parameter over `maxParamLength`):
 * mapped like every other error, so clients see one error shape.
 */
export function frameworkErrorHandler(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  void reply.send(errorHandler(error, request, reply));
}

/** Unknown routes answer in the same shape as every other error. */
export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): ErrorBody {
  reply.code(404);
  return {
    error: { code: ServiceErrorCode.NotFound, message: `No route ${request.method} ${request.url}` },
  };
}

function internal(): Mapped {
  return { status: 500, code: ServiceErrorCode.Internal, message: 'Internal server error', log: true };
}

function isFastifyClientError(
  error: unknown,
): error is Error & { statusCode: number; code?: string; validation?: unknown } {
  if (!(error instanceof Error)) return false;
  const status = (error as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}
