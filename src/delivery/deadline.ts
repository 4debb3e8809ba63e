/**
 * A whole-operation deadline. undici's headersTimeout and bodyTimeout measure the gap between
 * bytes, so a receiver that trickles one byte at a time never trips them; this does.
 *
 * `withDeadline(ms, fn)` gives `fn` a signal that aborts after `ms` and settles by then whatever
 * `fn` does: if `fn` does not honour the signal, the answer is still a TimeoutError at the
 * deadline (and `fn`'s late result, if any, is handed to `discard`).
 */
export async function withDeadline<T>(ms: number, fn: (signal: AbortSignal) => Promise<T>, discard?: (late: T) => void): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const err = new DOMException(`the operation did not finish within ${ms} ms`, 'TimeoutError');
      controller.abort(err);
      reject(err);
    }, ms);
  });
  const work = fn(controller.signal);
  try {
    return await Promise.race([work, expired]);
  } catch (err) {
    if (controller.signal.aborted) {
      // The work may still settle after the deadline: release what it produced, swallow its error.
      work.then((late) => discard?.(late), () => {});
      throw controller.signal.reason;
    }
    throw err;
  } finally {
    clearTimeout(timer);
    expired.catch(() => {});
  }
}
