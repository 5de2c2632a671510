// Luach dashboard entry point: app shell, language switch, device list.
import "./style.css";
import { DeviceList } from "./devices";
import { initialLang, lang, setLang, t } from "./i18n";

const app = document.getElementById("app");
if (!app) throw new Error("missing #app");

setLang(initialLang());

const header = document.createElement("header");
const title = document.createElement("h1");
const subtitle = document.createElement("span");
subtitle.className = "subtitle";
const switcher = document.createElement("button");
switcher.type = "button";
switcher.dataset.testid = "lang-switch";
header.append(title, subtitle, switcher);
const main = document.createElement("main");
app.append(header, main);

const list = new DeviceList(main);

function renderShell(): void {
  document.title = t("app.title");
  title.textContent = t("app.title");
  subtitle.textContent = t("app.subtitle");
  switcher.textContent = t("lang.switch");
}

switcher.addEventListener("click", () => {
  setLang(lang() === "he" ? "en" : "he");
  renderShell();
  list.render();
});

renderShell();
void list.start();
