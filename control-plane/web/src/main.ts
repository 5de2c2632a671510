// Luach dashboard entry point: app shell, navigation, language switch, pages.
import "./style.css";
import { DeviceList } from "./devices";
import { initialLang, lang, setLang, t, type MessageKey } from "./i18n";
import { SynagoguePage } from "./synagogue";
import { ContentPage } from "./content";
import { ProgrammePage } from "./programme";
import { HolidayTimesPage } from "./holidays";
import { JobsPage } from "./jobs";
import { AlertsPage } from "./alerts";
import { NotificationsPage } from "./notify";
import { RemindersPage } from "./reminders";
import { LoginForm } from "./login";
import { currentUser, logout, refresh, whenSignedOut } from "./session";

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
const account = document.createElement("span");
account.className = "account";
const signOut = document.createElement("button");
signOut.type = "button";
signOut.dataset.testid = "logout";
signOut.addEventListener("click", () => void logout());
header.append(title, subtitle, nav, account, signOut, switcher);

// Pages by hash route; each keeps its state while hidden.
const pages: { route: string; label: MessageKey; root: HTMLElement }[] = [
  { route: "#/", label: "nav.devices", root: document.createElement("main") },
  { route: "#/synagogue", label: "nav.synagogue", root: document.createElement("main") },
  { route: "#/content", label: "nav.content", root: document.createElement("main") },
  { route: "#/programme", label: "nav.programme", root: document.createElement("main") },
  { route: "#/holidays", label: "nav.holidays", root: document.createElement("main") },
  { route: "#/jobs", label: "nav.jobs", root: document.createElement("main") },
  { route: "#/alerts", label: "nav.alerts", root: document.createElement("main") },
  { route: "#/notifications", label: "nav.notifications", root: document.createElement("main") },
  { route: "#/reminders", label: "nav.reminders", root: document.createElement("main") },
];
app.append(header, ...pages.map((p) => p.root));

const list = new DeviceList(pages[0].root);
const synagogue = new SynagoguePage(pages[1].root);
const content = new ContentPage(pages[2].root);
const programme = new ProgrammePage(pages[3].root);
const holidays = new HolidayTimesPage(pages[4].root);
const jobs = new JobsPage(pages[5].root);
const alerts = new AlertsPage(pages[6].root);
const notifications = new NotificationsPage(pages[7].root);
const reminders = new RemindersPage(pages[8].root);
const loginRoot = document.createElement("main");
app.append(loginRoot);
const loginForm = new LoginForm(loginRoot, () => void signedIn());
let started = false;

function route(): void {
  const current = pages.find((p) => p.route === location.hash) ?? pages[0];
  const signedIn = currentUser() !== null;
  loginRoot.hidden = signedIn;
  nav.hidden = !signedIn;
  for (const p of pages) p.root.hidden = !signedIn || p !== current;
  for (const link of nav.querySelectorAll("a")) link.toggleAttribute("aria-current", link.getAttribute("href") === current.route);
}

// Holiday times follow the synagogue, which may have changed on its page since.
window.addEventListener("hashchange", () => {
  if (currentUser() && location.hash === "#/holidays") void holidays.refresh();
});

function renderShell(): void {
  document.title = t("app.title");
  title.textContent = t("app.title");
  subtitle.textContent = t("app.subtitle");
  switcher.textContent = t("lang.switch");
  const user = currentUser();
  account.textContent = user ? t("session.signedInAs", { email: user.email }) : "";
  signOut.hidden = !user;
  signOut.textContent = t("session.logout");
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
  content.render();
  programme.render();
  holidays.render();
  jobs.render();
  alerts.render();
  notifications.render();
  reminders.render();
  loginForm.render();
});
window.addEventListener("hashchange", route);

async function signedIn(): Promise<void> {
  renderShell();
  if (!started) {
    started = true;
    void list.start();
    void synagogue.start();
    void content.start();
    void programme.start();
    void holidays.start();
    void jobs.start();
    void alerts.start();
    void notifications.start();
    void reminders.start();
  }
}

whenSignedOut(() => {
  renderShell();
  loginForm.render();
});

renderShell();
loginForm.render();
// A page reload keeps the session through the refresh cookie.
if (await refresh()) await signedIn();
