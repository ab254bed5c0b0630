//! Helpers built on tasks and actors, as Ray's `ray.util`: [`ActorPool`] spreads calls over a
//! set of actors, and [`Queue`] is a bounded queue that tasks, actors and the driver share.

mod actor_pool;
mod queue;

pub use actor_pool::ActorPool;
pub use queue::Queue;
#[doc(hidden)]
pub use queue::QueueActor;
