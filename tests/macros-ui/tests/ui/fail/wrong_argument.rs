// A value of another type, or a ref to one, is refused where a `u64` is expected.
#[rustyray::remote]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    let wrong: rustyray::ObjectRef<String> = rustyray::put("x".to_string()).unwrap();
    let _ = square::remote(&wrong);
    let _ = square::remote("seven");
}
