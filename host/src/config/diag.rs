//! Diagnostics: every problem found in a config file, located by file, line, column,
//! resource and field path.

use std::cell::RefCell;
use std::fmt;

use super::source::{Marks, Position};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The config cannot be used.
    Error,
    /// The config is usable, but something in it is ignored or suspicious.
    Warning,
}

/// One located problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The config file, as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// `Kind/name` of the resource, when the problem is inside one.
    pub resource: Option<String>,
    /// Field path inside the resource, e.g. `spec.http[0].route[1].destination.subset`.
    pub path: String,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if let Some(resource) = &self.resource {
            write!(f, "{resource}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// The diagnostics of one load, errors and warnings in the order they were found.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Adds a diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// Whether any error (not warning) was found.
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// The errors, in order.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    /// The warnings, in order.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// Sorts by line then column so that output reads top to bottom; ties keep their order.
    pub fn sort(&mut self) {
        self.items.sort_by_key(|d| (d.line, d.column));
    }
}

/// A config that could not be loaded: every error, and the warnings found on the way.
#[derive(Debug, thiserror::Error)]
#[error("{}", render(.0))]
pub struct ConfigError(pub Diagnostics);

fn render(diagnostics: &Diagnostics) -> String {
    let errors: Vec<String> = diagnostics.errors().map(ToString::to_string).collect();
    errors.join("\n")
}

/// Collects diagnostics for one file, locating field paths through each document's marks.
///
/// Errors and warnings are reported through a shared reference, so that many checks can
/// hold the same reporter.
#[derive(Debug)]
pub struct Reporter {
    file: String,
    marks: Vec<Marks>,
    diagnostics: RefCell<Diagnostics>,
}

/// A resource, as the reporter knows it: its document and its `Kind/name`.
#[derive(Debug, Clone)]
pub struct Site {
    /// The index of the YAML document in its file.
    pub document: usize,
    /// `Kind/name` of the resource.
    pub resource: String,
}

impl Reporter {
    /// A reporter for `file` whose documents carry `marks`.
    pub fn new(file: impl Into<String>, marks: Vec<Marks>) -> Self {
        Self {
            file: file.into(),
            marks,
            diagnostics: RefCell::default(),
        }
    }

    /// An error at `path` inside the resource at `site`.
    pub fn error(&self, site: &Site, path: impl Into<String>, message: impl Into<String>) {
        self.report(Severity::Error, site, path.into(), message.into());
    }

    /// A warning at `path` inside the resource at `site`.
    pub fn warn(&self, site: &Site, path: impl Into<String>, message: impl Into<String>) {
        self.report(Severity::Warning, site, path.into(), message.into());
    }

    /// An error not inside any resource (e.g. a YAML syntax error).
    pub fn file_error(&mut self, position: Position, message: impl Into<String>) {
        self.diagnostics.get_mut().push(Diagnostic {
            severity: Severity::Error,
            file: self.file.clone(),
            line: position.line,
            column: position.column,
            resource: None,
            path: String::new(),
            message: message.into(),
        });
    }

    fn report(&self, severity: Severity, site: &Site, path: String, message: String) {
        let position = self
            .marks
            .get(site.document)
            .map(|m| m.locate(&path))
            .unwrap_or_default();
        self.diagnostics.borrow_mut().push(Diagnostic {
            severity,
            file: self.file.clone(),
            line: position.line,
            column: position.column,
            resource: (!site.resource.is_empty()).then(|| site.resource.clone()),
            path,
            message,
        });
    }

    /// How many errors were reported so far.
    pub fn error_count(&self) -> usize {
        self.diagnostics.borrow().errors().count()
    }

    /// Whether any error was reported so far.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.borrow().has_errors()
    }

    /// The diagnostics, sorted by position.
    pub fn finish(self) -> Diagnostics {
        let mut diagnostics = self.diagnostics.into_inner();
        diagnostics.sort();
        diagnostics
    }
}
