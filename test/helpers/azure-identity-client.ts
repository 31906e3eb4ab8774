// Runs the real @azure/identity in a process of its own (its managed-identity state is per process)
// and prints the outcome as one JSON line: { token, expiresOnTimestamp } or { error, message }.
// argv: <mi|dac> <scope> [clientId]
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';

const [kind, scope, clientId] = process.argv.slice(2);
const retryOptions = { maxRetries: 0 };
const credential =
  kind === 'dac'
    ? new DefaultAzureCredential({ ...(clientId ? { managedIdentityClientId: clientId } : {}), retryOptions })
    : clientId
      ? new ManagedIdentityCredential({ clientId, retryOptions })
      : new ManagedIdentityCredential({ retryOptions });

try {
  const token = await credential.getToken(scope!);
  process.stdout.write(JSON.stringify({ token: token.token, expiresOnTimestamp: token.expiresOnTimestamp }) + '\n');
} catch (err) {
  process.stdout.write(JSON.stringify({ error: (err as Error).name, message: (err as Error).message.slice(0, 2000) }) + '\n');
}
