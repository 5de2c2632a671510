// Luach dashboard entry point: app shell, navigation, language switch, pages.
import "./style.css";
import { DeviceList } from "./devices";
import { initialLang, lang, setLang, t, type MessageKey } from "./i18n";
import { SynagoguePage } from "./synagogue";

const app = document.getElementById("app");
if (!app) throw new Error("missing #app");

setLang(initialLang());

const header = document.createElement("header");
const title = document.createElement("h1");
const subtitle = document.createElement("span");
subtitle.className = "subtitle";
const nav = document.createElement("nav");
const switcher = document.createElement("button");
switcher.type = "button";
switcher.dataset.testid = "lang-switch";
header.append(title, subtitle, nav, switcher);

// Pages by hash route; each keeps its state while hidden.
const pages: { route: string; label: MessageKey; root: HTMLElement }[] = [
  { route: "#/", label: "nav.devices", root: document.createElement("main") },
  { route: "#/synagogue", label: "nav.synagogue", root: document.createElement("main") },
];
app.append(header, ...pages.map((p) => p.root));

const list = new DeviceList(pages[0].root);
const synagogue = new SynagoguePage(pages[1].root);

function route(): void {
  const current = pages.find((p) => p.route === location.hash) ?? pages[0];
  for (const p of pages) p.root.hidden = p !== current;
  for (const link of nav.querySelectorAll("a")) link.toggleAttribute("aria-current", link.getAttribute("href") === current.route);
}

function renderShell(): void {
  document.title = t("app.title");
  title.textContent = t("app.title");
  subtitle.textContent = t("app.subtitle");
  switcher.textContent = t("lang.switch");
  nav.replaceChildren(
    ...pages.map((p) => {
      const a = document.createElement("a");
      a.href = p.route;
      a.textContent = t(p.label);
      a.dataset.testid = `nav-${p.route.replace("#/", "") || "devices"}`;
      return a;
    }),
  );
  route();
}

switcher.addEventListener("click", () => {
  setLang(lang() === "he" ? "en" : "he");
  renderShell();
  list.render();
  synagogue.render();
});
window.addEventListener("hashchange", route);

renderShell();
void list.start();
void synagogue.start();
