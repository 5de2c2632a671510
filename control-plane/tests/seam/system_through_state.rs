// The cross-tenant store lives inside the services, out of the handlers' reach.
use axum::extract::State;
use luach_control_plane::state::AppState;

async fn handler(State(state): State<AppState>) {
    let _ = state.auth.system.user_by_email("someone@else.example").await;
}

fn main() {
    let _ = handler;
}
