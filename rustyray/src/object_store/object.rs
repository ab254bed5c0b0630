//! An object's value as the store holds it: typed, shared or inline, with its size and what
//! its type is.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::blocks::Block;
use super::codec::{bulk_size, encoded_size, serialize_as};
use super::SPILLABLE;
use crate::error::{Error, Result};

/// What can be stored as an object: serializable (for spilling and for other processes), owned
/// and shareable across threads.
///
/// Implemented for every type that meets the bounds; you never implement it yourself.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored in the object store",
    label = "objects must be `Serialize + Deserialize + Send + Sync + 'static`",
    note = "derive `serde::Serialize` and `serde::Deserialize` for your own types; share data \
            with owned types (`Vec`, `String`, `Arc<T>`), not `Rc` or references"
)]
pub trait Value: Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Value for T {}

pub(super) type SerializeFn = fn(&(dyn Any + Send + Sync)) -> Result<Vec<u8>>;

/// Takes the reusable allocation out of a freed value (see `blocks.rs`).
type RecycleFn = fn(Arc<dyn Any + Send + Sync>) -> Option<Block>;

/// A ready object: the typed value (with its size) and what its type is (five words: a cell
/// must stay within the allocator's fast size classes, see `cell.rs`).
#[derive(Clone)]
pub(crate) struct Object {
    pub(super) value: Held,
    of: &'static ValueType,
}

/// How an object holds its value.
///
/// `()` (the result of every task run for its effect) and the primitive numbers and flags are
/// held inline: they need no allocation, made by the thread that stores the result and freed by
/// the one that drops the last ref, and no count that both would write.
#[derive(Clone)]
pub(super) enum Held {
    Inline(Scalar),
    /// Any other value, with its encoded size.
    Shared {
        value: Arc<dyn Any + Send + Sync>,
        size: usize,
    },
}

/// A primitive value held inline; each variant holds the value's own type, so reads downcast
/// it as they do a shared one.
#[derive(Clone, Copy)]
pub(super) enum Scalar {
    Unit(()),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    Usize(usize),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    Isize(isize),
    F32(f32),
    F64(f64),
    Bool(bool),
    Char(char),
}

/// `match` over a [`Scalar`], binding the value to `$v` in every arm.
macro_rules! each_scalar {
    ($scalar:expr, $v:ident => $body:expr) => {
        match $scalar {
            Scalar::Unit($v) => $body,
            Scalar::U8($v) => $body,
            Scalar::U16($v) => $body,
            Scalar::U32($v) => $body,
            Scalar::U64($v) => $body,
            Scalar::Usize($v) => $body,
            Scalar::I8($v) => $body,
            Scalar::I16($v) => $body,
            Scalar::I32($v) => $body,
            Scalar::I64($v) => $body,
            Scalar::Isize($v) => $body,
            Scalar::F32($v) => $body,
            Scalar::F64($v) => $body,
            Scalar::Bool($v) => $body,
            Scalar::Char($v) => $body,
        }
    };
}

/// Runs `$m!` with every scalar's variant and type, in [`Scalar`]'s order: the one list the
/// type tests below are made from.
macro_rules! with_scalar_types {
    ($m:ident) => {
        $m!(Unit: (), U8: u8, U16: u16, U32: u32, U64: u64, Usize: usize, I8: i8, I16: i16,
            I32: i32, I64: i64, Isize: isize, F32: f32, F64: f64, Bool: bool, Char: char)
    };
}

/// A scalar's value as the 64 bits a cell publishes (`cell.rs`), and back.
trait Bits: Copy {
    fn to_bits(self) -> u64;
    fn from_bits(bits: u64) -> Self;
}

macro_rules! integer_bits {
    ($($t:ty),*) => {$(
        impl Bits for $t {
            fn to_bits(self) -> u64 {
                self as u64
            }
            fn from_bits(bits: u64) -> Self {
                bits as $t
            }
        }
    )*};
}
integer_bits!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl Bits for () {
    fn to_bits(self) -> u64 {
        0
    }
    fn from_bits(_: u64) -> Self {}
}

impl Bits for f32 {
    fn to_bits(self) -> u64 {
        f32::to_bits(self).into()
    }
    fn from_bits(bits: u64) -> Self {
        f32::from_bits(bits as u32)
    }
}

impl Bits for f64 {
    fn to_bits(self) -> u64 {
        f64::to_bits(self)
    }
    fn from_bits(bits: u64) -> Self {
        f64::from_bits(bits)
    }
}

impl Bits for bool {
    fn to_bits(self) -> u64 {
        self.into()
    }
    fn from_bits(bits: u64) -> Self {
        bits != 0
    }
}

impl Bits for char {
    fn to_bits(self) -> u64 {
        u32::from(self).into()
    }
    fn from_bits(bits: u64) -> Self {
        char::from_u32(bits as u32).unwrap_or_default()
    }
}

impl Scalar {
    /// `value` as a scalar, if its type is one (the type tests fold away for every `T`).
    #[inline]
    pub(super) fn of<T: 'static>(value: &T) -> Option<Scalar> {
        let any = value as &dyn Any;
        macro_rules! try_as {
            ($($variant:ident: $t:ty),*) => {$(
                if TypeId::of::<T>() == TypeId::of::<$t>() {
                    return any.downcast_ref::<$t>().copied().map(Scalar::$variant);
                }
            )*};
        }
        with_scalar_types!(try_as);
        None
    }

    /// The [`kind`](Self::kind) of the scalars of type `T` (their variant's position), if `T`
    /// is one (folds to a constant).
    #[inline]
    pub(super) fn kind_of<T: 'static>() -> Option<u8> {
        let mut kind = 0;
        macro_rules! try_as {
            ($($variant:ident: $t:ty),*) => {$(
                if TypeId::of::<T>() == TypeId::of::<$t>() {
                    return Some(kind);
                }
                kind += 1;
            )*};
        }
        with_scalar_types!(try_as);
        let _ = kind;
        None
    }

    /// Which variant it is: its position in [`Scalar`].
    #[inline]
    pub(super) fn kind(&self) -> u8 {
        fn kind_of_value<V: 'static>(_: &V) -> u8 {
            Scalar::kind_of::<V>().unwrap_or(u8::MAX) // every variant holds a scalar type
        }
        each_scalar!(self, v => kind_of_value(v))
    }

    /// The value's bits, as [`from_bits`](Self::from_bits) reads them back.
    #[inline]
    pub(super) fn to_bits(self) -> u64 {
        each_scalar!(self, v => Bits::to_bits(v))
    }

    /// The scalar of kind `kind` whose [`to_bits`](Self::to_bits) were `bits` (`()` for a
    /// kind that is none).
    #[inline]
    pub(super) fn from_bits(kind: u8, bits: u64) -> Scalar {
        let mut at = 0;
        macro_rules! try_as {
            ($($variant:ident: $t:ty),*) => {$(
                if kind == at {
                    return Scalar::$variant(<$t as Bits>::from_bits(bits));
                }
                at += 1;
            )*};
        }
        with_scalar_types!(try_as);
        let _ = at;
        Scalar::Unit(())
    }

    /// The value, if it is a `T` (for a scalar `T`, one test of the variant: the type tests
    /// fold away; `None` for any other `T`).
    #[inline]
    pub(super) fn get<T: 'static + Clone>(&self) -> Option<T> {
        macro_rules! try_as {
            ($($variant:ident: $t:ty),*) => {$(
                if TypeId::of::<T>() == TypeId::of::<$t>() {
                    return match self {
                        Scalar::$variant(v) => (v as &dyn Any).downcast_ref::<T>().cloned(),
                        _ => None,
                    };
                }
            )*};
        }
        with_scalar_types!(try_as);
        None
    }

    pub(super) fn as_any(&self) -> &(dyn Any + Send + Sync) {
        each_scalar!(self, v => v)
    }

    pub(super) fn to_arc(self) -> Arc<dyn Any + Send + Sync> {
        each_scalar!(self, v => Arc::new(v))
    }

    /// The length of its postcard encoding.
    pub(super) fn size(&self) -> usize {
        each_scalar!(self, v => encoded_size(v))
    }
}

/// What an object's type is: its name (for errors), how to serialize it and, for the values
/// [`put_slice`](crate::put_slice) copies, how to take their allocation back for reuse. One
/// per type and kind of put.
pub(super) struct ValueType {
    type_name: fn() -> &'static str,
    serialize: SerializeFn,
    recycle: Option<RecycleFn>,
}

/// The [`ValueType`] of `T`, as a constant promoted to a static.
pub(super) struct TypeOf<T>(std::marker::PhantomData<T>);

impl<T: Value> TypeOf<T> {
    pub(super) const OF: &'static ValueType = &ValueType {
        type_name: std::any::type_name::<T>,
        serialize: serialize_as::<T>,
        recycle: None,
    };
}

/// The [`ValueType`] of the `Vec<T>`s that [`put_slice`](crate::put_slice) copies, whose
/// allocation goes back to the store's [`Blocks`](super::blocks::Blocks) when they are freed.
struct SliceOf<T>(std::marker::PhantomData<T>);

impl<T: Value + Copy> SliceOf<T> {
    const OF: &'static ValueType = &ValueType {
        type_name: std::any::type_name::<Vec<T>>,
        serialize: serialize_as::<Vec<T>>,
        recycle: Some(recycle_vec::<T>),
    };
}

/// The allocation of a `Vec<T>` nobody else holds, if it is worth keeping.
fn recycle_vec<T: Value + Copy>(value: Arc<dyn Any + Send + Sync>) -> Option<Block> {
    let vec = Arc::try_unwrap(value.downcast::<Vec<T>>().ok()?).ok()?;
    Block::of_vec(vec)
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object")
            .field("type", &self.type_name())
            .field("size", &self.size())
            .finish()
    }
}

impl Object {
    /// Wraps a value. Its size is the length of its postcard encoding, counted without
    /// allocating.
    ///
    /// `()` and primitives are held inline (see [`Held`]).
    #[inline]
    pub(crate) fn new<T: Value>(value: T) -> Object {
        match Scalar::of(&value) {
            Some(scalar) => Object {
                value: Held::Inline(scalar),
                of: TypeOf::<T>::OF,
            },
            None => Object::from_arc(Arc::new(value)),
        }
    }

    /// Wraps a `Vec` that [`put_slice`](crate::put_slice) copied, so its allocation is kept
    /// for reuse when the object is freed (see [`into_block`](Self::into_block)).
    pub(super) fn slice<T: Value + Copy>(vec: Vec<T>) -> Object {
        Object {
            of: SliceOf::<T>::OF,
            ..Object::from_arc(Arc::new(vec))
        }
    }

    /// The allocation of a value [`put_slice`](crate::put_slice) copied, if nobody else holds
    /// it (a read may have lent it out) and it is large enough to keep.
    pub(super) fn into_block(self) -> Option<Block> {
        match (self.value, self.of.recycle) {
            (Held::Shared { value, .. }, Some(recycle)) => recycle(value),
            _ => None,
        }
    }

    pub(crate) fn from_arc<T: Value>(value: Arc<T>) -> Object {
        let size = Object::size_of(&*value);
        Object {
            value: Held::Shared { value, size },
            of: TypeOf::<T>::OF,
        }
    }

    /// The size an object of `value` would have (the length of its postcard encoding), counted
    /// without allocating; 0 for a scalar, which is never large.
    #[inline]
    pub(crate) fn size_of<T: Value>(value: &T) -> usize {
        if Scalar::of(value).is_some() {
            return 0;
        }
        bulk_size::<T>(value).unwrap_or_else(|| encoded_size(value))
    }

    /// [`new`](Self::new) of a value whose [`size_of`](Self::size_of) is known already.
    pub(crate) fn sized<T: Value>(value: T, size: usize) -> Object {
        match Scalar::of(&value) {
            Some(scalar) => Object {
                value: Held::Inline(scalar),
                of: TypeOf::<T>::OF,
            },
            None => Object {
                value: Held::Shared {
                    value: Arc::new(value),
                    size,
                },
                of: TypeOf::<T>::OF,
            },
        }
    }

    /// The value, if it is held inline.
    #[inline]
    pub(super) fn scalar(&self) -> Option<Scalar> {
        match self.value {
            Held::Inline(scalar) => Some(scalar),
            Held::Shared { .. } => None,
        }
    }

    /// The value.
    pub(super) fn any(&self) -> &(dyn Any + Send + Sync) {
        match &self.value {
            Held::Inline(scalar) => scalar.as_any(),
            Held::Shared { value, .. } => &**value,
        }
    }

    /// The length of the value's postcard encoding.
    pub(super) fn size(&self) -> usize {
        match &self.value {
            Held::Inline(scalar) => scalar.size(),
            Held::Shared { size, .. } => *size,
        }
    }

    /// Whether it may count against the memory budget (and be spilled): only a shared value
    /// can be large.
    #[inline]
    pub(super) fn is_large(&self) -> bool {
        matches!(self.value, Held::Shared { size, .. } if size >= SPILLABLE)
    }

    /// How many hold the value: the object, and the `Arc`s lent out by reads (one for a value
    /// held inline, which is never lent).
    pub(super) fn holders(&self) -> usize {
        match &self.value {
            Held::Shared { value, .. } => Arc::strong_count(value),
            Held::Inline(_) => 1,
        }
    }

    /// Whether `self` and `other` hold the same value (not merely equal ones).
    pub(super) fn same_value(&self, other: &Object) -> bool {
        match (&self.value, &other.value) {
            (Held::Shared { value: a, .. }, Held::Shared { value: b, .. }) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The value as `Arc<T>`, or a [`Error::TypeMismatch`].
    pub(crate) fn downcast<T: Value>(&self) -> Result<Arc<T>> {
        let value = match &self.value {
            Held::Shared { value, .. } => Arc::clone(value),
            Held::Inline(scalar) => scalar.to_arc(),
        };
        value.downcast::<T>().map_err(|_| Error::TypeMismatch {
            expected: std::any::type_name::<T>(),
            found: self.type_name(),
        })
    }

    /// The value itself, if it is a `T` held by this object alone (not lent out by reads, not
    /// held inline); the object back otherwise.
    pub(super) fn into_value<T: Value>(self) -> std::result::Result<T, Object> {
        match self.value {
            Held::Shared { value, size } if Arc::strong_count(&value) == 1 => {
                match value.downcast::<T>().map(Arc::try_unwrap) {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(value)) => Err(Object {
                        value: Held::Shared { value, size },
                        of: self.of,
                    }),
                    Err(value) => Err(Object {
                        value: Held::Shared { value, size },
                        of: self.of,
                    }),
                }
            }
            value => Err(Object { value, of: self.of }),
        }
    }

    /// A clone of the value, or a [`Error::TypeMismatch`].
    #[inline]
    pub(crate) fn cloned<T: Value + Clone>(&self) -> Result<T> {
        if let Held::Inline(scalar) = &self.value {
            if let Some(value) = scalar.get::<T>() {
                return Ok(value);
            }
        }
        self.any()
            .downcast_ref::<T>()
            .cloned()
            .ok_or_else(|| Error::TypeMismatch {
                expected: std::any::type_name::<T>(),
                found: self.type_name(),
            })
    }

    /// The object in postcard form.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>> {
        (self.of.serialize)(self.any())
    }

    /// The name of the value's type.
    pub(super) fn type_name(&self) -> &'static str {
        (self.of.type_name)()
    }
}
