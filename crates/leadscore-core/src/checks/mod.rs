//! The built-in checks behind `is = "..."`: e-mail kind, phone validity, full name.

mod email;
mod name;
mod phone;

pub use email::{EmailKind, classify_email};
pub use name::is_full_name;
pub use phone::{PhoneKind, classify_phone, is_valid_phone, region_for_country};
