//! Hostile engines for libivcs's tests (docs/design/hot-swap.md, "What is
//! tested"). Each build (one cargo feature, see Cargo.toml) is the real
//! engine ([`ivcs_engine::component::Component`]) with every export passed
//! through, except one behaviour: so pushes, uploads and state work
//! normally until it turns hostile, and a test sees containment and
//! rollback act on a recording engine. `other-world` instead builds a
//! component of an unrelated world, which a host cannot instantiate as an
//! engine. Compiled for wasm32 only; the native build is empty.
//!
//! Never shipped: the Makefile builds these into `target/hostile/`, and
//! they may import more than the three capabilities (they do not).

#[cfg(all(target_arch = "wasm32", not(feature = "other-world")))]
mod wrapper;

#[cfg(all(target_arch = "wasm32", feature = "other-world"))]
mod other_world;
