// A handler holds the application state: its store offers no lookup that crosses tenants.
use axum::extract::State;
use luach_control_plane::state::AppState;

async fn handler(State(state): State<AppState>) {
    let _ = state.store.user_by_id("someone-elses-user").await;
}

fn main() {
    let _ = handler;
}
