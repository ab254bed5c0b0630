// Arguments and results must be storable objects; the error points at the type.
struct Opaque(u8);

#[rustyray::remote]
fn takes(value: Opaque) -> u8 {
    value.0
}

#[rustyray::remote]
fn gives() -> Opaque {
    Opaque(1)
}

fn main() {}
