//! Building content bundles (format and reading in [`luach_content::bundle`]) from a tenant's
//! documents.
//!
//! [`TenantContent`] loads the tenant's documents once; [`TenantContent::bundle_for`] then
//! picks what one screen shows, so refreshing every screen of a tenant costs one read of each
//! kind. [`notify`] tells connected screens over MQTT when their bundle changes.

pub mod notify;

pub use notify::BundleNotifier;

use chrono::{Duration, NaiveDate};
use luach_content::bundle::{ALIYOT_DAYS, FORMAT, MAX_PER_KIND, sha256_hex};
use luach_content::{BoardSettings, Bundle, Item};

use crate::store::{
    AliyotInput, AnnouncementInput, Device, MemorialInput, ShiurInput, StoreResult, Stored, Synagogue, TenantStore,
    TimerInput,
};

/// A built bundle: its exact bytes and their hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub bytes: Vec<u8>,
    /// Hex SHA-256 of `bytes`: the version.
    pub sha256: String,
}

/// The synagogue a screen shows: the first (by id) whose `screens` match it.
pub fn synagogue_of<'a>(device: &Device, synagogues: &'a [Synagogue]) -> Option<&'a Synagogue> {
    synagogues
        .iter()
        .find(|s| s.profile.screens.matches(device.id.as_str(), &device.tags))
}

/// Everything of one tenant that goes into its screens' bundles.
#[derive(Debug, Clone)]
pub struct TenantContent {
    synagogues: Vec<Synagogue>,
    announcements: Vec<Stored<AnnouncementInput>>,
    timers: Vec<Stored<TimerInput>>,
    memorials: Vec<Item<MemorialInput>>,
    shiurim: Vec<Item<ShiurInput>>,
    aliyot: Vec<Stored<AliyotInput>>,
}

impl TenantContent {
    /// Reads the tenant's documents; honours are kept from the day before `today` up to
    /// [`ALIYOT_DAYS`] after it.
    pub async fn load(store: &TenantStore<'_>, today: NaiveDate) -> StoreResult<Self> {
        let (from, until) = (today - Duration::days(1), today + Duration::days(ALIYOT_DAYS));
        Ok(Self {
            synagogues: store.synagogues(MAX_PER_KIND).await?,
            announcements: store.list(MAX_PER_KIND, None).await?,
            timers: store.list(MAX_PER_KIND, None).await?,
            memorials: store
                .list::<MemorialInput>(MAX_PER_KIND, None)
                .await?
                .into_iter()
                .map(Item::from)
                .collect(),
            shiurim: store
                .list::<ShiurInput>(MAX_PER_KIND, None)
                .await?
                .into_iter()
                .map(Item::from)
                .collect(),
            aliyot: store
                .list::<AliyotInput>(MAX_PER_KIND, None)
                .await?
                .into_iter()
                .filter(|a| a.input.date >= from && a.input.date <= until)
                .collect(),
        })
    }

    /// `device`'s bundle.
    /// The synagogue `device` shows (see [`synagogue_of`]).
    pub fn synagogue_for(&self, device: &Device) -> Option<&Synagogue> {
        synagogue_of(device, &self.synagogues)
    }

    pub fn bundle_for(&self, device: &Device) -> Bundle {
        let synagogue = synagogue_of(device, &self.synagogues);
        self.assemble(
            device.id.as_str(),
            device.tenant_id.as_str(),
            &device.tags,
            synagogue,
            device.board.clone(),
        )
    }

    /// What a screen showing synagogue `id` gets when nothing targets it by id or tag (the
    /// content meant for every screen), drawn with `board`: the synagogue page's picture.
    /// `None` when the tenant has no such synagogue.
    pub fn bundle_for_synagogue(&self, tenant: &str, id: &str, board: BoardSettings) -> Option<Bundle> {
        let synagogue = self.synagogues.iter().find(|s| s.id.as_str() == id)?;
        // No device has an empty id, so only untargeted content matches.
        Some(self.assemble("", tenant, &[], Some(synagogue), board))
    }

    fn assemble(
        &self,
        id: &str,
        tenant: &str,
        tags: &[String],
        synagogue: Option<&Synagogue>,
        board: BoardSettings,
    ) -> Bundle {
        let targeted = |t: &crate::store::Targets| t.matches(id, tags);
        Bundle {
            format: FORMAT,
            device_id: id.to_owned(),
            tenant_id: tenant.to_owned(),
            synagogue: synagogue.map(|s| Item {
                id: s.id.to_string(),
                input: s.profile.clone(),
            }),
            announcements: self
                .announcements
                .iter()
                .filter(|a| targeted(&a.input.targets))
                .cloned()
                .map(Item::from)
                .collect(),
            timers: self
                .timers
                .iter()
                .filter(|t| targeted(&t.input.targets))
                .cloned()
                .map(Item::from)
                .collect(),
            memorials: self.memorials.clone(),
            shiurim: self.shiurim.clone(),
            aliyot: self
                .aliyot
                .iter()
                .filter(|a| match (&a.input.synagogue, synagogue) {
                    (None, _) => true,
                    (Some(wanted), Some(s)) => wanted == s.id.as_str(),
                    (Some(_), None) => false,
                })
                .cloned()
                .map(Item::from)
                .collect(),
            board,
        }
    }

    /// `device`'s bundle as served: bytes and hash.
    pub fn build_for(&self, device: &Device) -> Built {
        let bytes = self.bundle_for(device).to_bytes();
        let sha256 = sha256_hex(&bytes);
        Built { bytes, sha256 }
    }
}
