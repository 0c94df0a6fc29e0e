pub mod import;
pub mod inspect;
pub mod predict;
pub mod video;
