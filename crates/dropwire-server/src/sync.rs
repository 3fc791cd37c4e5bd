//! Std mutexes without poisoning. A panic while a lock is held would be a bug the panic
//! already reports; the hub keeps serving with the state as it is rather than failing every
//! later caller, so every mutex here is taken through [`lock`].

use std::sync::{Mutex, MutexGuard, PoisonError};

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
