/*
 * The admin's theme (django-unfold) under Quire's Content-Security-Policy.
 *
 * Alpine's CSP build evaluates no code from attributes and reaches no global
 * names from them: unfold's components, which its templates call as global
 * functions (x-data="theme()"), are registered here by name, and the state the
 * page's <body> kept in inline code is the adminBody component.
 */
document.addEventListener("alpine:init", () => {
  const Alpine = window.Alpine;
  for (const name of ["theme", "searchForm", "searchDropdown", "searchCommand"]) {
    if (typeof window[name] === "function") {
      Alpine.data(name, window[name]);
    }
  }

  Alpine.data("adminBody", () => ({
    activeTab: "",
    // unfold's sortable inlines name these callbacks (app.js's, declared at its
    // top level) from their attributes.
    sortRecords: typeof sortRecords === "function" ? sortRecords : undefined,
    moveRecords: typeof moveRecords === "function" ? moveRecords : undefined,
    sidebarMobileOpen: false,
    sidebarDesktopOpen: localStorage.getItem("sidebarDesktopOpen") !== "0",
    // The change form posts back to its own address, with the open tab.
    formAction() {
      const here = window.location.pathname + window.location.search;
      return this.activeTab && this.activeTab !== "general"
        ? `${here}#${this.activeTab}`
        : here;
    },
    init() {
      const fallback = this.$el.dataset.activeTab || "";
      this.activeTab = fallback ? window.getCurrentTab() || fallback : "";
      this.$watch("sidebarDesktopOpen", (open) =>
        localStorage.setItem("sidebarDesktopOpen", open ? "1" : "0"),
      );
    },
  }));
});
