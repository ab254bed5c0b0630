// `get` reads one ref: the `ray.get(list)` habit gets a message naming `get_all`, and a plain
// value one saying it needs no `get`.
fn main() {
    let refs: Vec<rustyray::ObjectRef<u64>> = Vec::new();
    let _ = rustyray::get(&refs);
    let _ = rustyray::get(&refs[..]);
    let _ = rustyray::get_arc(&refs);
    let _ = rustyray::get(42_u64);
}
