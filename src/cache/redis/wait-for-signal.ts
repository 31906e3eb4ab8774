// A wait for a moment another part of the store announces (Redis usable, notifications subscribed):
// the waiter joins a set its owner calls through once the moment comes, and gives up after a time.

/** Resolves when the owner calls the waiters in `waiters`, or rejects with timeoutError() after timeoutMs. */
export function waitForSignal(waiters: Set<() => void>, timeoutMs: number, timeoutError: () => Error): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      waiters.delete(done);
      resolve();
    };
    const timer = setTimeout(() => {
      waiters.delete(done);
      reject(timeoutError());
    }, timeoutMs);
    waiters.add(done);
  });
}
