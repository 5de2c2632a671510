//! Roles and the permissions they grant.
//!
//! Routes declare the one [`Permission`] they need (see `api::routes`); a role is a set of
//! permissions. Permissions inside a tenant are granted only with a tenant scope; a
//! `super_admin` has no tenant and gets tenant permissions only while acting inside one tenant
//! (see [`super::Principal`]), capped at `tenant_admin`.

use serde::{Deserialize, Serialize};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Gabbai,
    Operator,
    TenantAdmin,
    SuperAdmin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::SuperAdmin,
        Role::TenantAdmin,
        Role::Gabbai,
        Role::Operator,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Gabbai => "gabbai",
            Self::Operator => "operator",
            Self::TenantAdmin => "tenant_admin",
            Self::SuperAdmin => "super_admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// What this role may do.
    pub fn permissions(self) -> Permissions {
        use Permission::*;
        let set: &[Permission] = match self {
            Self::Viewer => &[DevicesRead, ContentRead, ReleasesRead],
            Self::Gabbai => &[DevicesRead, ContentRead, ContentWrite, ReleasesRead],
            Self::Operator => &[DevicesRead, DevicesWrite, DevicesCommand, ContentRead, ReleasesRead],
            Self::TenantAdmin => &[
                DevicesRead,
                DevicesWrite,
                DevicesCommand,
                CommandsEmergency,
                ContentRead,
                ContentWrite,
                UsersManage,
                ReleasesRead,
            ],
            Self::SuperAdmin => &[TenantsManage, ReleasesRead, ReleasesManage],
        };
        Permissions::of(set)
    }

    /// True for roles that belong to a tenant (everything but `super_admin`).
    pub fn is_tenant_role(self) -> bool {
        self != Self::SuperAdmin
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Permission {
    DevicesRead,
    DevicesWrite,
    DevicesCommand,
    /// Send a command that goes through during Shabbat and Yom Tov.
    CommandsEmergency,
    ContentRead,
    ContentWrite,
    UsersManage,
    TenantsManage,
    /// See the installation's signed releases (to roll them out).
    ReleasesRead,
    /// Upload and remove releases: the installation's administrators.
    ReleasesManage,
}

impl Permission {
    pub const ALL: [Permission; 10] = [
        Permission::DevicesRead,
        Permission::DevicesWrite,
        Permission::DevicesCommand,
        Permission::CommandsEmergency,
        Permission::ContentRead,
        Permission::ContentWrite,
        Permission::UsersManage,
        Permission::TenantsManage,
        Permission::ReleasesRead,
        Permission::ReleasesManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DevicesRead => "devices:read",
            Self::DevicesWrite => "devices:write",
            Self::DevicesCommand => "devices:command",
            Self::CommandsEmergency => "commands:emergency",
            Self::ContentRead => "content:read",
            Self::ContentWrite => "content:write",
            Self::UsersManage => "users:manage",
            Self::TenantsManage => "tenants:manage",
            Self::ReleasesRead => "releases:read",
            Self::ReleasesManage => "releases:manage",
        }
    }

    /// True when the permission acts on a tenant's data (and so needs a tenant scope).
    pub fn is_tenant_permission(self) -> bool {
        !matches!(self, Self::TenantsManage | Self::ReleasesRead | Self::ReleasesManage)
    }
}

/// A set of [`Permission`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions(u32);

impl Permissions {
    pub fn of(list: &[Permission]) -> Self {
        Self(list.iter().fold(0, |acc, p| acc | (1 << *p as u8)))
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & (1 << p as u8) != 0
    }

    pub fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// True when every permission of `other` is in `self`.
    pub fn covers(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_nest() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        let admin = Role::TenantAdmin.permissions();
        for role in [Role::Viewer, Role::Gabbai, Role::Operator] {
            assert!(admin.covers(role.permissions()), "{role} exceeds tenant_admin");
        }
        assert!(!Role::Gabbai.permissions().contains(Permission::DevicesCommand));
        assert!(!Role::Operator.permissions().contains(Permission::ContentWrite));
        assert!(!Role::TenantAdmin.permissions().contains(Permission::TenantsManage));
    }
}
