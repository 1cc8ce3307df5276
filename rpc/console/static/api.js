// The RPC v2 API as the console uses it: a POST of a JSON operation to
// /v2/<module>, the session in the cmon-sid cookie the login sets.

export class RpcError extends Error {
  constructor(status, message) {
    super(message || status);
    this.status = status;
  }
}

export async function rpc(module, operation, fields = {}) {
  let res;
  try {
    res = await fetch(`/v2/${module}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify({ operation, ...fields }),
    });
  } catch (e) {
    throw new RpcError('NetworkError', `The controller cannot be reached: ${e.message}`);
  }
  let reply;
  try {
    reply = await res.json();
  } catch {
    throw new RpcError('UnknownError', `The controller answered HTTP ${res.status} without a JSON reply.`);
  }
  if (reply.request_status !== 'Ok') {
    throw new RpcError(reply.request_status, reply.error_string || reply.request_status);
  }
  return reply;
}

// Privileges are "rwx"-style strings from effective_privileges.
export const may = (privileges, p) => typeof privileges === 'string' && privileges.includes(p);

export const activeStatuses = new Set(['DEFINED', 'DEQUEUED', 'RUNNING']);
