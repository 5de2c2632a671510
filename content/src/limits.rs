//! How long each text a screen shows may be, in characters. The control plane's API refuses
//! longer input (422 naming the field) and the board is tested with every field at its limit
//! (`luach_board::demo::longest`), so whatever the API accepts fits on a screen.

/// A synagogue's name.
pub const SYNAGOGUE_NAME: usize = 100;
/// A synagogue's address.
pub const SYNAGOGUE_ADDRESS: usize = 200;
/// The synagogue an item of the programme belongs to (its id).
pub const SYNAGOGUE_REF: usize = 64;
/// A prayer's name in the schedule (checked by the calendar's rule validation).
pub const PRAYER_NAME: usize = luach_calendar::MAX_RULE_NAME;
/// Each language of an announcement.
pub const ANNOUNCEMENT: usize = 2_000;
/// A memorial plaque's name and family.
pub const MEMORIAL_NAME: usize = 200;
pub const MEMORIAL_FAMILY: usize = 200;
/// An honour's name, and how many honours one reading has.
pub const HONOUR_NAME: usize = 100;
pub const HONOURS: usize = 30;
/// The note of a day's honours.
pub const NOTE: usize = 200;
/// A shiur's teacher and location.
pub const TEACHER: usize = 100;
pub const LOCATION: usize = 100;
/// Each language of a timer's label, and the prayer a timer counts down to.
pub const TIMER_LABEL: usize = 100;
pub const TIMER_PRAYER: usize = 60;
