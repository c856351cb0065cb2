//! Guard: the checks a deleting run passes before it deletes. [`store_root`] (is STORAGE a store at
//! all), [`database_owner`] (a store a metadata database owns), [`lock`] (one deleting run at a
//! time), [`recheck`] (did the store change since it was judged).

pub mod database_owner;
pub mod lock;
pub mod recheck;
pub mod store_root;
