// `get` reads one ref: the `ray.get(list)` habit gets a message naming `get_all` (and no
// other error where its value is used), and a plain value one saying it needs no `get`.
fn used() -> rustyray::Result<u64> {
    let refs: Vec<rustyray::ObjectRef<u64>> = Vec::new();
    let values = rustyray::get(&refs)?;
    Ok(values.iter().sum())
}

fn main() {
    let refs: Vec<rustyray::ObjectRef<u64>> = Vec::new();
    let _ = rustyray::get(&refs);
    let _ = rustyray::get(&refs[..]);
    let _ = rustyray::get_arc(&refs);
    let _ = rustyray::get(42_u64);
}
