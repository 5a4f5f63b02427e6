//! The plan: what one reconcile pass adds, changes and removes, and what it must leave alone
//! because someone else owns it. Printed by `hearth net apply`; pure data.

use std::fmt;

use super::model::{Address, Link, Mac, Neighbour, Route, Rule, Sysctl};

/// The attributes of an owned link that change in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkChange {
    /// New MTU.
    pub mtu: Option<u32>,
    /// New state.
    pub up: Option<bool>,
    /// New master: `Some(None)` removes it.
    pub master: Option<Option<String>>,
    /// New MAC.
    pub mac: Option<Mac>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write a sysctl (`from` is `None` when it cannot be read yet).
    SetSysctl {
        /// What to write.
        sysctl: Sysctl,
        /// The current value.
        from: Option<String>,
    },
    /// Create a link (and its veth peer), then mark it.
    CreateLink(Link),
    /// Delete an owned link whose kind or creation parameters differ, and create it anew.
    RecreateLink {
        /// What the kernel has.
        old: Link,
        /// What the file wants.
        new: Link,
    },
    /// Change an owned link in place.
    ChangeLink {
        /// What the kernel has.
        old: Link,
        /// The changes.
        change: LinkChange,
    },
    /// Add an address.
    AddAddress(Address),
    /// Replace an owned address whose flags differ.
    ReplaceAddress(Address),
    /// Add a route.
    AddRoute(Route),
    /// Replace an owned route whose next hops, type or source differ.
    ReplaceRoute {
        /// What the kernel has.
        old: Route,
        /// What the file wants.
        new: Route,
    },
    /// Add a neighbour entry; `over_cache` replaces an entry the kernel learned.
    AddNeighbour {
        /// The entry.
        neighbour: Neighbour,
        /// Replace the kernel's cache entry for the same address.
        over_cache: bool,
    },
    /// Replace an owned neighbour entry whose MAC differs.
    ReplaceNeighbour(Neighbour),
    /// Add a rule.
    AddRule(Rule),
    /// Delete an owned rule the file no longer has.
    DeleteRule(Rule),
    /// Delete an owned neighbour entry.
    DeleteNeighbour(Neighbour),
    /// Delete an owned route.
    DeleteRoute(Route),
    /// Delete an owned address.
    DeleteAddress(Address),
    /// Delete an owned link.
    DeleteLink(Link),
}

impl Action {
    /// `+` add, `~` change, `-` remove.
    pub fn sign(&self) -> char {
        match self {
            Self::CreateLink(_) | Self::AddAddress(_) | Self::AddRoute(_) | Self::AddRule(_) => '+',
            Self::AddNeighbour {
                over_cache: false, ..
            } => '+',
            Self::DeleteRule(_)
            | Self::DeleteNeighbour(_)
            | Self::DeleteRoute(_)
            | Self::DeleteAddress(_)
            | Self::DeleteLink(_) => '-',
            _ => '~',
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.sign())?;
        match self {
            Self::SetSysctl { sysctl, from } => write!(
                f,
                "sysctl {}: {} -> {}",
                sysctl.display_name(),
                from.as_deref().unwrap_or("?"),
                sysctl.value
            ),
            Self::CreateLink(l) => write!(f, "{l}"),
            Self::RecreateLink { old, new } => write!(f, "{new} (recreated; was {old})"),
            Self::ChangeLink { old, change } => {
                write!(f, "link {}:", old.name)?;
                if let Some(m) = change.mtu {
                    write!(
                        f,
                        " mtu {} -> {m}",
                        old.mtu.map_or("?".into(), |v| v.to_string())
                    )?;
                }
                if let Some(up) = change.up {
                    write!(f, " {}", if up { "down -> up" } else { "up -> down" })?;
                }
                if let Some(m) = &change.master {
                    let show = |m: &Option<String>| m.clone().unwrap_or_else(|| "none".into());
                    write!(f, " master {} -> {}", show(&old.master), show(m))?;
                }
                if let Some(m) = change.mac {
                    write!(f, " mac -> {m}")?;
                }
                Ok(())
            }
            Self::AddAddress(a) | Self::ReplaceAddress(a) | Self::DeleteAddress(a) => {
                write!(f, "{a}")
            }
            Self::AddRoute(r) | Self::DeleteRoute(r) => write!(f, "{r}"),
            Self::ReplaceRoute { old, new } => write!(f, "{new} (was {old})"),
            Self::AddNeighbour {
                neighbour,
                over_cache,
            } => {
                write!(f, "{neighbour}")?;
                if *over_cache {
                    f.write_str(" (over a learned entry)")?;
                }
                Ok(())
            }
            Self::ReplaceNeighbour(n) | Self::DeleteNeighbour(n) => write!(f, "{n}"),
            Self::AddRule(r) | Self::DeleteRule(r) => write!(f, "{r}"),
            Self::DeleteLink(l) => write!(f, "link {}", l.name),
        }
    }
}

/// A desired object that an object Hearth does not own blocks. It is left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The desired object, as the plan prints it.
    pub wanted: String,
    /// What blocks it.
    pub reason: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "! {}: {}; left alone", self.wanted, self.reason)
    }
}

/// The result of one diff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Steps, in the order they run.
    pub actions: Vec<Action>,
    /// Desired objects blocked by foreign ones.
    pub conflicts: Vec<Conflict>,
    /// Veth peers the file declares, made with their pair by a [`Action::CreateLink`] or
    /// [`Action::RecreateLink`] of the other end: marked as Hearth's when made (an undeclared
    /// peer is not).
    pub declared_peers: Vec<String>,
}

impl Plan {
    /// True when there is nothing to do and nothing blocked.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.conflicts.is_empty()
    }

    /// (to add, to change, to remove).
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |c: char| self.actions.iter().filter(|a| a.sign() == c).count();
        (count('+'), count('~'), count('-'))
    }

    /// Records a conflict.
    pub fn conflict(&mut self, wanted: impl fmt::Display, reason: impl Into<String>) {
        self.conflicts.push(Conflict {
            wanted: wanted.to_string(),
            reason: reason.into(),
        });
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.actions {
            writeln!(f, "{a}")?;
        }
        for c in &self.conflicts {
            writeln!(f, "{c}")?;
        }
        let (add, change, remove) = self.counts();
        write!(
            f,
            "plan: {add} to add, {change} to change, {remove} to remove"
        )?;
        if !self.conflicts.is_empty() {
            write!(
                f,
                ", {} blocked by objects Hearth does not own",
                self.conflicts.len()
            )?;
        }
        Ok(())
    }
}
