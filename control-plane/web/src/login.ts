// The sign-in form: email and password, then the second-factor code when the account has one.
import { t } from "./i18n";
import { login, type LoginResult } from "./session";

export class LoginForm {
  private needTotp = false;
  private result: LoginResult | null = null;
  private email = "";

  constructor(
    private root: HTMLElement,
    private onSuccess: () => void,
  ) {}

  render(): void {
    const form = document.createElement("form");
    form.className = "login";
    form.dataset.testid = "login-form";
    const heading = document.createElement("h2");
    heading.textContent = t("login.heading");
    const field = (name: string, label: string, type: string, autocomplete: string) => {
      const wrap = document.createElement("label");
      const span = document.createElement("span");
      span.textContent = label;
      const input = document.createElement("input");
      Object.assign(input, { name, type, autocomplete, required: true });
      input.dir = "ltr";
      wrap.append(span, input);
      return { wrap, input };
    };
    const email = field("email", t("login.email"), "email", "username");
    email.input.value = this.email;
    const password = field("password", t("login.password"), "password", "current-password");
    form.append(heading, email.wrap, password.wrap);
    let totp: HTMLInputElement | null = null;
    if (this.needTotp) {
      const code = field("totp", t("login.totp"), "text", "one-time-code");
      code.input.inputMode = "numeric";
      totp = code.input;
      form.append(code.wrap);
    }
    const submit = document.createElement("button");
    submit.type = "submit";
    submit.textContent = t("login.submit");
    form.append(submit);
    if (this.result && this.result !== "ok") {
      const message = document.createElement("p");
      message.className = "error";
      message.setAttribute("role", "alert");
      message.dataset.testid = "login-error";
      message.textContent = t(
        this.result === "invalid" ? "login.invalid" : this.result === "locked" ? "login.locked" : this.result === "totp_required" ? "login.totpRequired" : "login.error",
      );
      form.append(message);
    }
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.email = email.input.value;
      void login(email.input.value, password.input.value, totp?.value || undefined).then((result) => {
        this.result = result;
        this.needTotp = this.needTotp || result === "totp_required";
        if (result === "ok") {
          this.needTotp = false;
          this.result = null;
          this.onSuccess();
        }
        this.render();
      });
    });
    this.root.replaceChildren(form);
  }
}
