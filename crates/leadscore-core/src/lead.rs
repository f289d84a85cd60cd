//! A lead: what we know about a person who might buy (the explicit data).

use std::collections::BTreeMap;

/// The standard lead columns, in their canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StdField {
    Id,
    FirstName,
    LastName,
    Email,
    Phone,
    Company,
    JobTitle,
    Industry,
    Employees,
    AnnualRevenue,
    Country,
    Region,
    City,
    Source,
    IsCustomer,
}

impl StdField {
    pub const ALL: [StdField; 15] = [
        StdField::Id,
        StdField::FirstName,
        StdField::LastName,
        StdField::Email,
        StdField::Phone,
        StdField::Company,
        StdField::JobTitle,
        StdField::Industry,
        StdField::Employees,
        StdField::AnnualRevenue,
        StdField::Country,
        StdField::Region,
        StdField::City,
        StdField::Source,
        StdField::IsCustomer,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            StdField::Id => "id",
            StdField::FirstName => "first_name",
            StdField::LastName => "last_name",
            StdField::Email => "email",
            StdField::Phone => "phone",
            StdField::Company => "company",
            StdField::JobTitle => "job_title",
            StdField::Industry => "industry",
            StdField::Employees => "employees",
            StdField::AnnualRevenue => "annual_revenue",
            StdField::Country => "country",
            StdField::Region => "region",
            StdField::City => "city",
            StdField::Source => "source",
            StdField::IsCustomer => "is_customer",
        }
    }

    /// The standard field with this column name (case-insensitive, trimmed).
    pub fn from_name(name: &str) -> Option<StdField> {
        let name = name.trim();
        StdField::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Where a rule reads a lead's value: a standard column or a custom attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRef {
    Std(StdField),
    Custom(String),
}

impl FieldRef {
    pub fn parse(name: &str) -> FieldRef {
        match StdField::from_name(name) {
            Some(f) => FieldRef::Std(f),
            None => FieldRef::Custom(name.trim().to_owned()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            FieldRef::Std(f) => f.name(),
            FieldRef::Custom(name) => name,
        }
    }
}

/// Read access to a lead's explicit data, whatever holds it: a [`Lead`], a
/// CSV row, a database row. Missing and blank values are `None`.
pub trait LeadData {
    fn get(&self, field: StdField) -> Option<&str>;
    fn attribute(&self, name: &str) -> Option<&str>;

    /// The value a rule addressing `field` sees.
    fn value(&self, field: &FieldRef) -> Option<&str> {
        match field {
            FieldRef::Std(f) => self.get(*f),
            FieldRef::Custom(name) => self.attribute(name),
        }
    }
}

/// A lead's explicit data. Blank values are stored as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lead {
    std: [Option<String>; 15],
    attributes: BTreeMap<String, String>,
}

impl Lead {
    pub fn new(id: impl Into<String>) -> Self {
        let mut lead = Lead::default();
        lead.set(StdField::Id, id);
        lead
    }

    /// Sets a standard field; a blank value clears it.
    pub fn set(&mut self, field: StdField, value: impl Into<String>) {
        let value = value.into();
        self.std[field.index()] = (!value.trim().is_empty()).then_some(value);
    }

    /// Sets a custom attribute; a blank value clears it.
    pub fn set_attribute(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        if value.trim().is_empty() {
            self.attributes.remove(&name);
        } else {
            self.attributes.insert(name, value);
        }
    }

    /// Builder form of [`Lead::set`].
    pub fn with(mut self, field: StdField, value: impl Into<String>) -> Self {
        self.set(field, value);
        self
    }

    /// Builder form of [`Lead::set_attribute`].
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_attribute(name, value);
        self
    }

    pub fn id(&self) -> &str {
        self.get(StdField::Id).unwrap_or("")
    }

    pub fn get(&self, field: StdField) -> Option<&str> {
        self.std[field.index()].as_deref()
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    pub fn attributes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Clears every field, so a batch reader can reuse one lead value.
    pub fn clear(&mut self) {
        self.std.iter_mut().for_each(|v| *v = None);
        self.attributes.clear();
    }
}

impl LeadData for Lead {
    fn get(&self, field: StdField) -> Option<&str> {
        Lead::get(self, field)
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        Lead::attribute(self, name)
    }
}
