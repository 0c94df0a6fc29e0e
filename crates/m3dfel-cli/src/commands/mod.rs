pub mod import;
pub mod inspect;
pub mod plot;
pub mod predict;
pub mod video;
