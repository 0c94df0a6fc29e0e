pub mod import;
pub mod inspect;
pub mod predict;
