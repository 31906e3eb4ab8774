// Stylesheet of the diagnostics page: mobile first (usable at 360 px), no external fonts or images.
export const PAGE_CSS = `*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24; background: #f4f5f7; }
code, pre, textarea, input { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.top { padding: 16px; background: #12324f; color: #fff; }
.top h1 { margin: 0 0 6px; font-size: 1.3rem; }
.top p { margin: 0; max-width: 60rem; color: #d7e3ef; }
main { max-width: 60rem; margin: 0 auto; padding: 12px; }
.card { background: #fff; border: 1px solid #d9dde3; border-radius: 8px; padding: 12px; margin: 0 0 12px; }
label { display: block; font-weight: 600; margin: 8px 0 4px; }
.opt { font-weight: 400; color: #5b6470; font-size: .85em; }
input, select, textarea { width: 100%; max-width: 100%; padding: 8px; border: 1px solid #b9c0ca; border-radius: 6px; font-size: 14px; background: #fff; color: inherit; }
textarea { resize: vertical; min-height: 6rem; word-break: break-all; }
.hint { margin: 6px 0 0; color: #5b6470; font-size: .9em; }
.grid { display: grid; grid-template-columns: 1fr; gap: 0 12px; }
@media (min-width: 720px) { .grid { grid-template-columns: 1fr 1fr; } }
button { font: inherit; cursor: pointer; }
form button[type=submit] { margin-top: 12px; padding: 10px 16px; border: 0; border-radius: 6px; background: #1f6feb; color: #fff; font-weight: 600; width: 100%; }
@media (min-width: 720px) { form button[type=submit] { width: auto; } }
.tabs { display: flex; gap: 4px; margin: 0 0 -1px; }
.tabs button { flex: 1 1 0; padding: 8px 12px; border: 1px solid #d9dde3; border-bottom: 0; border-radius: 8px 8px 0 0; background: #e9ecf0; color: #1b1f24; }
.tabs button[aria-selected=true] { background: #fff; font-weight: 600; }
.status { min-height: 1.4em; margin: 4px 0 12px; color: #5b6470; }
.status.failed { color: #a40e26; font-weight: 600; }
.verdict { padding: 10px 12px; border-radius: 8px; font-weight: 700; margin: 0 0 12px; }
.verdict.ok { background: #dcf5e3; color: #0b5d26; }
.verdict.will_fail { background: #fde2e4; color: #8a0c1f; }
.finding { border-left: 5px solid #8c959f; }
.finding.error { border-left-color: #cf222e; }
.finding.warning { border-left-color: #bf8700; }
.finding.info { border-left-color: #0969da; }
.finding h3 { margin: 0 0 6px; font-size: 1rem; display: flex; flex-wrap: wrap; gap: 6px; align-items: baseline; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: .78rem; font-weight: 700; text-transform: uppercase; background: #e9ecf0; }
.badge.error { background: #cf222e; color: #fff; }
.badge.warning { background: #bf8700; color: #fff; }
.badge.info { background: #0969da; color: #fff; }
.finding .id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9rem; }
.finding .idp-error { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; color: #8a0c1f; }
.finding p { margin: 4px 0; }
dl { margin: 6px 0 0; display: grid; grid-template-columns: 1fr; }
dt { font-weight: 600; color: #5b6470; font-size: .85rem; }
dd { margin: 0 0 6px; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
@media (min-width: 720px) { dl { grid-template-columns: 7rem 1fr; } dd { margin: 0 0 4px; } }
p, dd, .message, h3 { overflow-wrap: anywhere; word-break: break-word; }
pre { margin: 0; padding: 8px; background: #f6f8fa; border-radius: 6px; white-space: pre-wrap; word-break: break-all; font-size: .82rem; }
h2 { font-size: 1.05rem; margin: 16px 0 8px; }
`;
