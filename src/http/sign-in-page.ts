// The small pages a person sees during a sign-in: the outcome, what happens next, and (on failure)
// what to do. Plain HTML from this origin under the broker's CSP; every value is escaped.

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (text: string) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

export interface SignInPage {
  title: string;
  /** Paragraphs, plain text. */
  lines: string[];
  /** What to do next, plain text. */
  hint?: string;
}

export function renderSignInPage(page: SignInPage): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escape(page.title)} · token-broker</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}h1{font-size:1.4rem}.hint{border-left:4px solid #0b62a4;padding:.25rem .75rem;background:#f1f6fb}</style>
</head>
<body>
<main>
<h1>${escape(page.title)}</h1>
${page.lines.map((l) => `<p>${escape(l)}</p>`).join('\n')}
${page.hint ? `<p class="hint">${escape(page.hint)}</p>` : ''}
</main>
</body>
</html>
`;
}
