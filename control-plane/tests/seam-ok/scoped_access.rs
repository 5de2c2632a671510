// What handler code does instead: the caller's scope opens the caller's tenant.
use axum::extract::State;
use luach_control_plane::api::Scope;
use luach_control_plane::state::AppState;
use luach_control_plane::store::{DeviceFilter, PageRequest};

async fn handler(State(state): State<AppState>, Scope(scope): Scope) {
    let page = PageRequest { limit: 10, after: None };
    let _ = state.store.tenant(&scope).devices(&DeviceFilter::default(), &page).await;
}

fn main() {
    let _ = handler;
}
