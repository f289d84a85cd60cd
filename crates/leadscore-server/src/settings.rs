//! Settings: defaults, then a TOML file, then `LEADSCORE_*` variables.

use leadscore_core::workflow::{Framework, RatingPolicy};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The address to listen on.
    pub listen: String,
    /// `sqlite://PATH` (the embedded default) or `postgres://...`.
    pub database_url: String,
    /// The largest request body accepted, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Log format: `text` or `json`.
    pub log_format: String,
    /// How reps qualify leads: the framework in use, frameworks of the
    /// team's own, follow-up timing.
    pub qualification: QualificationSettings,
    /// How a new lead's signals propose a rating (see `RatingPolicy`).
    pub rating: RatingPolicy,
    /// Triggers, reps and routing, nurture, working hours, webhook delivery.
    pub automation: crate::automation::AutomationSettings,
    /// The web pages.
    pub web: WebSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSettings {
    /// Mark the session cookie `Secure` (sent over HTTPS only; browsers also
    /// send it to http://localhost). Turn off only behind a trusted plain-HTTP hop.
    pub secure_cookies: bool,
    /// The language of the login page when the browser asks for none we speak.
    pub default_locale: String,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            secure_cookies: true,
            default_locale: "en".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualificationSettings {
    /// `bant` (the default), `champ`, `anum`, `meddic`, or the name of one
    /// declared under `[[qualification.frameworks]]`.
    pub framework: String,
    /// Days before a competitor's contract ends that a lead disqualified as
    /// `under_contract` gets its follow-up task.
    pub contract_follow_up_days: u32,
    /// Frameworks declared here, the same way as the built-in ones:
    /// `name`, then `[[qualification.frameworks.criteria]]` with `key`,
    /// `label`, `questions` and `facts` (`key`, `label`, `kind`: text,
    /// number, money, date or person).
    pub frameworks: Vec<Framework>,
}

impl Default for QualificationSettings {
    fn default() -> Self {
        QualificationSettings {
            framework: "bant".into(),
            contract_follow_up_days: 60,
            frameworks: Vec::new(),
        }
    }
}

impl QualificationSettings {
    /// The framework in use.
    pub fn framework(&self) -> Framework {
        self.frameworks
            .iter()
            .cloned()
            .chain(Framework::built_in())
            .find(|f| f.name == self.framework)
            .expect("checked when the settings were loaded")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            database_url: leadscore_store::DEFAULT_DATABASE_URL.into(),
            max_body_bytes: 16 * 1024 * 1024,
            log_format: "text".into(),
            qualification: QualificationSettings::default(),
            rating: RatingPolicy::default(),
            automation: Default::default(),
            web: WebSettings::default(),
        }
    }
}

/// The variables that override the file, and the setting each one sets.
const ENV: [(&str, &str); 4] = [
    ("LEADSCORE_LISTEN", "listen"),
    ("LEADSCORE_DATABASE_URL", "database_url"),
    ("LEADSCORE_MAX_BODY_BYTES", "max_body_bytes"),
    ("LEADSCORE_LOG_FORMAT", "log_format"),
];

impl Settings {
    /// Defaults, overridden by the file's values (if a file is given), then
    /// by `LEADSCORE_*` variables from `env`.
    pub fn load(
        file: Option<(&str, &str)>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, String> {
        let mut s = match file {
            Some((path, text)) => toml::from_str(text).map_err(|e| format!("{path}: {e}"))?,
            None => Settings::default(),
        };
        for (var, key) in ENV {
            let Some(v) = env(var) else { continue };
            match key {
                "listen" => s.listen = v,
                "database_url" => s.database_url = v,
                "max_body_bytes" => {
                    s.max_body_bytes = v
                        .parse()
                        .map_err(|_| format!("{var}: `{v}` is not a number of bytes"))?
                }
                _ => s.log_format = v,
            }
        }
        if !matches!(s.log_format.as_str(), "text" | "json") {
            return Err(format!("log_format: `{}` is not `text` or `json`", s.log_format));
        }
        let q = &s.qualification;
        for f in &q.frameworks {
            f.validate()
                .map_err(|e| format!("qualification.frameworks: {e}"))?;
        }
        let names: Vec<String> = q
            .frameworks
            .iter()
            .map(|f| f.name.clone())
            .chain(Framework::built_in().into_iter().map(|f| f.name))
            .collect();
        if !names.contains(&q.framework) {
            return Err(format!(
                "qualification.framework: `{}` is not a known framework ({})",
                q.framework,
                names.join(", ")
            ));
        }
        s.rating.validate().map_err(|e| format!("rating: {e}"))?;
        s.automation.compile()?;
        if !crate::web::i18n::LOCALES.contains(&s.web.default_locale.as_str()) {
            return Err(format!(
                "web.default_locale: `{}` is not one of {}",
                s.web.default_locale,
                crate::web::i18n::LOCALES.join(", ")
            ));
        }
        Ok(s)
    }

    /// The file `leadscore default-config` prints.
    pub fn default_file() -> String {
        let body = toml::to_string(&Settings::default()).expect("settings serialize");
        format!(
            "# leadscore settings. Precedence: these defaults, then this file \
             (--config FILE), then LEADSCORE_* variables\n# (LEADSCORE_LISTEN, \
             LEADSCORE_DATABASE_URL, LEADSCORE_MAX_BODY_BYTES, LEADSCORE_LOG_FORMAT), then flags.\n\
             # Automation (triggers, reps, webhooks): docs/automation.md; a sample: examples/automation.toml.\n\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let file = "listen = \"0.0.0.0:9000\"\nlog_format = \"json\"\n";
        let s = Settings::load(Some(("f.toml", file)), |v| {
            (v == "LEADSCORE_LISTEN").then(|| "127.0.0.1:1".to_owned())
        })
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:1");
        assert_eq!(s.log_format, "json");
        assert_eq!(s.database_url, "sqlite://leadscore.db");
        let e = Settings::load(Some(("f.toml", "lisen = 1")), |_| None).unwrap_err();
        assert!(e.contains("f.toml") && e.contains("lisen"), "{e}");
        let printed = Settings::default_file();
        let body: String = printed
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            Settings::load(Some(("x", &body)), |_| None).unwrap(),
            Settings::default()
        );
        assert_eq!(Settings::default().qualification.framework().name, "bant");
    }

    #[test]
    fn the_sample_automation_settings_load() {
        let text = include_str!("../../../examples/automation.toml");
        let s = Settings::load(Some(("examples/automation.toml", text)), |_| None).unwrap();
        assert_eq!(s.automation.reps.len(), 3);
        assert_eq!(s.automation.compile().unwrap().triggers.len(), 3);
    }

    #[test]
    fn a_team_declares_its_own_framework() {
        let file = r#"
[qualification]
framework = "fit3"
[[qualification.frameworks]]
name = "fit3"
[[qualification.frameworks.criteria]]
key = "pain"
label = "A pain we solve"
questions = ["What breaks today?"]
facts = [{ key = "cost", label = "What it costs them", kind = "money" }]
[[qualification.frameworks.criteria]]
key = "sponsor"
label = "An executive sponsor"
"#;
        let s = Settings::load(Some(("f.toml", file)), |_| None).unwrap();
        let f = s.qualification.framework();
        assert_eq!(f.criteria.len(), 2);
        assert_eq!(f.criteria[0].facts[0].key, "cost");
        let e = Settings::load(Some(("f.toml", "[qualification]\nframework = \"spin\"")), |_| {
            None
        })
        .unwrap_err();
        assert!(e.contains("spin") && e.contains("bant"), "{e}");
    }
}
