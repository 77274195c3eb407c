//! Where in a resource the resolver is, and where its findings go.

use crate::config::diag::{Reporter, Site};

/// A field of a resource: its path (e.g. `spec.http[0].route[1]`), the resource, and
/// the reporter that collects what is found there. Cheap to derive and to clone.
#[derive(Debug, Clone)]
pub struct Scope<'r> {
    reporter: &'r Reporter,
    site: &'r Site,
    path: String,
}

impl<'r> Scope<'r> {
    /// The field at `path` (`""`: the resource itself) of the resource at `site`.
    pub fn new(reporter: &'r Reporter, site: &'r Site, path: impl Into<String>) -> Self {
        Self {
            reporter,
            site,
            path: path.into(),
        }
    }

    /// The field `name` inside this one: `a.name`, or `name` at the resource's root.
    pub fn field(&self, name: &str) -> Self {
        let path = if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        };
        Self { path, ..*self }
    }

    /// The item `i` of this list: `a[i]`.
    pub fn index(&self, i: usize) -> Self {
        let path = format!("{}[{i}]", self.path);
        Self { path, ..*self }
    }

    /// Reports an error at this field.
    pub fn error(&self, message: impl Into<String>) {
        self.reporter.error(self.site, self.path.as_str(), message);
    }

    /// Reports a warning at this field.
    pub fn warn(&self, message: impl Into<String>) {
        self.reporter.warn(self.site, self.path.as_str(), message);
    }

    /// The field path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The resource this field is in.
    pub fn site(&self) -> &'r Site {
        self.site
    }

    /// How many errors were reported so far, here or anywhere else.
    pub fn error_count(&self) -> usize {
        self.reporter.error_count()
    }
}

/// Runs `f` at the root of a test resource; returns what it came to and what it reported.
#[cfg(test)]
pub fn probe<T>(f: impl FnOnce(&Scope<'_>) -> T) -> (T, crate::config::Diagnostics) {
    let reporter = Reporter::new("test.yaml", Vec::new());
    let site = Site {
        document: 0,
        resource: "Test/probe".into(),
    };
    let result = f(&Scope::new(&reporter, &site, ""));
    (result, reporter.finish())
}

/// The field paths of the errors in `reported`, in order.
#[cfg(test)]
pub fn errors_at(reported: &crate::config::Diagnostics) -> Vec<&str> {
    reported.errors().map(|d| d.path.as_str()).collect()
}

/// The field paths of the warnings in `reported`, in order.
#[cfg(test)]
pub fn warnings_at(reported: &crate::config::Diagnostics) -> Vec<&str> {
    reported.warnings().map(|d| d.path.as_str()).collect()
}
