//! MemoryStore.
use crate::*;
#[derive(Debug, Clone, Default)]
pub struct MemoryStoreConfig;
#[derive(Debug)]
pub struct MemoryStore;
