//! A tiny per-thread cache of per-year tables (holidays, parsha schedule), so that computing
//! consecutive days does not rebuild the same Hebrew year every time.

use std::cell::RefCell;
use std::rc::Rc;

use crate::Error;

/// Most recently used first; a handful of years is all a screen needs.
const CAPACITY: usize = 4;

/// The thread-local storage behind a [`YearCache`]: (Hebrew year, Israel) → table.
pub(crate) type Slots<T> = RefCell<Vec<((i32, bool), Rc<T>)>>;

/// A per-thread cache for one kind of table keyed by (Hebrew year, Israel).
pub(crate) struct YearCache<T: 'static> {
    slots: &'static std::thread::LocalKey<Slots<T>>,
}

impl<T: 'static> YearCache<T> {
    pub(crate) const fn new(slots: &'static std::thread::LocalKey<Slots<T>>) -> Self {
        Self { slots }
    }

    /// The cached table, or build (and cache) it.
    pub(crate) fn get(&self, key: (i32, bool), build: impl FnOnce() -> Result<T, Error>) -> Result<Rc<T>, Error> {
        if let Some(hit) = self
            .slots
            .with(|s| s.borrow().iter().find(|(k, _)| *k == key).map(|(_, v)| Rc::clone(v)))
        {
            return Ok(hit);
        }
        let value = Rc::new(build()?);
        self.slots.with(|s| {
            let mut s = s.borrow_mut();
            s.insert(0, (key, Rc::clone(&value)));
            s.truncate(CAPACITY);
        });
        Ok(value)
    }
}
