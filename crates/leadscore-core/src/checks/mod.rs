//! The built-in checks behind `is = "..."`: e-mail kind, phone validity, full name.

mod email;
mod name;
mod phone;

pub use email::{EmailKind, classify_email};
pub use name::is_full_name;
pub use phone::{PhoneKind, classify_phone, is_valid_phone, region_for_country};

/// Loads the e-mail domain lists and (when `phones`) the phone metadata now
/// rather than on first use: the phone metadata takes tens of milliseconds to
/// load. Batch callers run this on a spare thread while they read their input.
pub fn warm_up(phones: bool) {
    let _ = classify_email("warm-up@example.com");
    if phones {
        let _ = classify_phone("+1 650-253-0000", None);
    }
}
