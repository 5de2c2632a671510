// The storage backends are reachable only through the handles.
use luach_control_plane::store::backend::Backend;

fn main() {}
