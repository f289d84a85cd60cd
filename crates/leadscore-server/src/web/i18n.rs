//! The pages' words in English, Vietnamese and Ukrainian (the languages of
//! the source documents). Numbers, dates and money are formatted by the
//! browser for the same locale (`Intl`), so only words live here.

use serde_json::{Map, Value};

pub const LOCALES: [&str; 3] = ["en", "vi", "uk"];

/// (key, English, Vietnamese, Ukrainian)
const WORDS: &[(&str, &str, &str, &str)] = &[
    (
        "app",
        "Lead scoring",
        "Chấm điểm khách hàng tiềm năng",
        "Оцінювання лідів",
    ),
    ("login.title", "Sign in", "Đăng nhập", "Вхід"),
    ("login.name", "User name", "Tên người dùng", "Ім'я користувача"),
    ("login.password", "Password", "Mật khẩu", "Пароль"),
    ("login.submit", "Sign in", "Đăng nhập", "Увійти"),
    (
        "login.failed",
        "The name or the password is wrong.",
        "Tên hoặc mật khẩu không đúng.",
        "Неправильне ім'я або пароль.",
    ),
    ("nav.queue", "My leads", "Khách hàng của tôi", "Мої ліди"),
    ("nav.logout", "Sign out", "Đăng xuất", "Вийти"),
    ("nav.language", "Language", "Ngôn ngữ", "Мова"),
    (
        "queue.title",
        "Leads, most promising first",
        "Khách hàng tiềm năng, hứa hẹn nhất trước",
        "Ліди, найперспективніші спершу",
    ),
    (
        "queue.search",
        "Search name, company, e-mail",
        "Tìm theo tên, công ty, e-mail",
        "Пошук: ім'я, компанія, e-mail",
    ),
    (
        "queue.empty",
        "No leads match.",
        "Không có khách hàng phù hợp.",
        "Немає відповідних лідів.",
    ),
    ("queue.more", "More", "Xem thêm", "Ще"),
    (
        "queue.due",
        "Follow-ups due",
        "Việc cần theo dõi đến hạn",
        "Термінові нагадування",
    ),
    (
        "queue.no_due",
        "No follow-up is due.",
        "Không có việc đến hạn.",
        "Немає термінових нагадувань.",
    ),
    ("filter.band", "Band", "Mức", "Рівень"),
    ("filter.rating", "Rating", "Đánh giá", "Оцінка"),
    ("filter.status", "Status", "Trạng thái", "Статус"),
    ("filter.mql", "MQL only", "Chỉ MQL", "Лише MQL"),
    ("filter.any", "Any", "Tất cả", "Будь-який"),
    ("col.name", "Name", "Họ tên", "Ім'я"),
    ("col.phone", "Phone", "Điện thoại", "Телефон"),
    ("col.email", "E-mail", "E-mail", "E-mail"),
    ("col.company", "Company", "Công ty", "Компанія"),
    ("col.industry", "Industry", "Ngành", "Галузь"),
    ("col.employees", "Employees", "Số nhân viên", "Працівників"),
    (
        "col.region",
        "Province / region",
        "Tỉnh / khu vực",
        "Область / регіон",
    ),
    ("col.rating", "Rating", "Đánh giá", "Оцінка"),
    ("col.status", "Status", "Trạng thái", "Статус"),
    ("col.score", "Score", "Điểm", "Бал"),
    ("col.band", "Band", "Mức", "Рівень"),
    ("col.grade", "Grade", "Hạng", "Клас"),
    ("col.owner", "Owner", "Phụ trách", "Відповідальний"),
    (
        "col.activity",
        "Last activity",
        "Hoạt động gần nhất",
        "Остання активність",
    ),
    ("col.why", "Why", "Lý do", "Чому"),
    ("band.cold", "cold", "lạnh", "холодний"),
    ("band.warm", "warm", "ấm", "теплий"),
    ("band.hot", "hot", "nóng", "гарячий"),
    ("band.very_hot", "very hot", "rất nóng", "дуже гарячий"),
    ("rating.unknown", "unknown", "chưa rõ", "невідомо"),
    (
        "rating.not_potential",
        "not potential",
        "không tiềm năng",
        "неперспективний",
    ),
    ("rating.low", "low", "thấp", "низька"),
    ("rating.medium", "medium", "trung bình", "середня"),
    ("rating.high", "high", "cao", "висока"),
    ("status.new", "new", "mới", "новий"),
    (
        "status.attempting_contact",
        "attempting contact",
        "đang liên hệ",
        "спроба контакту",
    ),
    (
        "status.contacted",
        "contacted",
        "đã liên hệ",
        "контакт встановлено",
    ),
    ("status.verified", "verified", "đã xác minh", "перевірено"),
    (
        "status.contact_later",
        "contact later",
        "liên hệ sau",
        "зв'язатися пізніше",
    ),
    ("status.qualified", "qualified", "đủ điều kiện", "кваліфіковано"),
    ("status.converted", "converted", "đã chuyển đổi", "конвертовано"),
    ("status.disqualified", "disqualified", "loại", "дискваліфіковано"),
    ("status.lost", "lost", "mất", "втрачено"),
    (
        "lead.back",
        "Back to the list",
        "Quay lại danh sách",
        "Назад до списку",
    ),
    (
        "lead.why",
        "Why this score",
        "Vì sao có điểm này",
        "Чому такий бал",
    ),
    ("lead.fields", "Details", "Thông tin", "Дані"),
    (
        "lead.history",
        "Score over time",
        "Điểm theo thời gian",
        "Бал у часі",
    ),
    ("lead.timeline", "Timeline", "Dòng thời gian", "Хронологія"),
    (
        "lead.qualification",
        "Qualification",
        "Đánh giá nhu cầu",
        "Кваліфікація",
    ),
    ("lead.save", "Save", "Lưu", "Зберегти"),
    ("lead.saved", "Saved.", "Đã lưu.", "Збережено."),
    (
        "lead.status_change",
        "Change the status",
        "Đổi trạng thái",
        "Змінити статус",
    ),
    ("lead.reason", "Reason", "Lý do", "Причина"),
    ("lead.date", "Date", "Ngày", "Дата"),
    (
        "lead.value",
        "Expected value",
        "Giá trị dự kiến",
        "Очікувана сума",
    ),
    (
        "lead.log_activity",
        "Log an activity",
        "Ghi hoạt động",
        "Записати активність",
    ),
    ("lead.note", "Note", "Ghi chú", "Нотатка"),
    (
        "lead.prediction",
        "Predicted chance to convert",
        "Khả năng chuyển đổi dự đoán",
        "Прогноз ймовірності конверсії",
    ),
    (
        "lead.not_found",
        "No such lead, or not yours.",
        "Không có khách hàng này, hoặc không thuộc về bạn.",
        "Такого ліда немає або він не ваш.",
    ),
    ("activity.call_held", "call", "cuộc gọi", "дзвінок"),
    ("activity.meeting_held", "meeting", "cuộc họp", "зустріч"),
    (
        "activity.email_sent",
        "e-mail sent",
        "đã gửi e-mail",
        "надіслано e-mail",
    ),
    (
        "activity.quote_sent",
        "quote sent",
        "đã gửi báo giá",
        "надіслано пропозицію",
    ),
    (
        "activity.meeting_missed",
        "missed meeting",
        "lỡ cuộc họp",
        "пропущена зустріч",
    ),
    ("answer.unknown", "unknown", "chưa rõ", "невідомо"),
    ("answer.no", "no", "không", "ні"),
    ("answer.partial", "partly", "một phần", "частково"),
    ("answer.yes", "yes", "có", "так"),
    ("error", "Something went wrong", "Đã có lỗi", "Щось пішло не так"),
    ("nav.overview", "Overview", "Tổng quan", "Огляд"),
    (
        "ov.leads",
        "leads with an outcome",
        "khách hàng đã có kết quả",
        "лідів із результатом",
    ),
    ("ov.won", "won", "thành công", "виграно"),
    ("lead.fit", "fit", "mức phù hợp", "відповідність"),
    ("lead.engagement", "engagement", "mức tương tác", "залученість"),
    (
        "lead.proposed",
        "Proposed rating",
        "Đánh giá đề xuất",
        "Запропонована оцінка",
    ),
    ("lead.created", "Created", "Ngày tạo", "Створено"),
    ("lead.currency", "Currency", "Tiền tệ", "Валюта"),
    (
        "flag.rating_disagrees_with_score",
        "the rating disagrees with the score",
        "đánh giá khác xa điểm",
        "оцінка суперечить балу",
    ),
    ("qual.qualified", "qualified", "đủ điều kiện", "кваліфіковано"),
    ("qual.in_progress", "in progress", "đang đánh giá", "у процесі"),
    (
        "qual.unqualified",
        "not qualified",
        "không đủ điều kiện",
        "не кваліфіковано",
    ),
    ("log.status", "status", "trạng thái", "статус"),
    ("log.rating", "rating", "đánh giá", "оцінка"),
    (
        "log.qualification",
        "qualification",
        "đánh giá nhu cầu",
        "кваліфікація",
    ),
    ("log.automation", "automation", "tự động", "автоматизація"),
    (
        "log.task_created",
        "follow-up created",
        "tạo việc theo dõi",
        "створено нагадування",
    ),
    (
        "log.task_done",
        "follow-up done",
        "hoàn thành việc theo dõi",
        "нагадування виконано",
    ),
    (
        "log.task_snoozed",
        "follow-up moved",
        "dời việc theo dõi",
        "нагадування перенесено",
    ),
    (
        "log.task_reassigned",
        "follow-up reassigned",
        "giao lại việc theo dõi",
        "нагадування передано",
    ),
    ("cause.events", "events", "sự kiện", "події"),
    ("cause.created", "created", "tạo mới", "створено"),
    (
        "cause.lead_edited",
        "data edited",
        "sửa thông tin",
        "дані змінено",
    ),
    ("cause.time_passed", "time passed", "theo thời gian", "минув час"),
    ("cause.model_activated", "new model", "mô hình mới", "нова модель"),
    (
        "reason.not_interested",
        "not interested",
        "không quan tâm",
        "не зацікавлений",
    ),
    (
        "reason.no_opportunity",
        "no opportunity",
        "không có cơ hội",
        "немає можливості",
    ),
    ("reason.not_a_fit", "not a fit", "không phù hợp", "не підходить"),
    ("reason.bad_data", "bad data", "dữ liệu sai", "хибні дані"),
    (
        "reason.under_contract",
        "under contract elsewhere",
        "đang có hợp đồng khác",
        "має чинний контракт",
    ),
    (
        "ov.top",
        "top % of leads by score",
        "% khách hàng điểm cao nhất",
        "% лідів з найвищим балом",
    ),
    (
        "models.fit_rules",
        "fit rules",
        "quy tắc phù hợp",
        "правил відповідності",
    ),
    (
        "models.behavior_rules",
        "behavior rules",
        "quy tắc hành vi",
        "правил поведінки",
    ),
    ("role.rep", "rep", "nhân viên kinh doanh", "менеджер з продажу"),
    ("role.manager", "manager", "quản lý", "керівник"),
    ("role.admin", "admin", "quản trị viên", "адміністратор"),
    (
        "nav.models",
        "Scoring models",
        "Mô hình chấm điểm",
        "Моделі оцінювання",
    ),
    ("nav.admin", "Administration", "Quản trị", "Адміністрування"),
    (
        "page.forbidden",
        "This page is not for your role.",
        "Trang này không dành cho vai trò của bạn.",
        "Ця сторінка не для вашої ролі.",
    ),
    (
        "ov.by_band",
        "Leads by band",
        "Khách hàng theo mức",
        "Ліди за рівнем",
    ),
    (
        "ov.by_rep",
        "Leads by rep",
        "Khách hàng theo nhân viên",
        "Ліди за менеджером",
    ),
    ("ov.mqls", "MQLs per week", "MQL mỗi tuần", "MQL на тиждень"),
    (
        "ov.untouched",
        "Hot leads nobody has touched",
        "Khách hàng nóng chưa ai liên hệ",
        "Гарячі ліди, яких ніхто не торкався",
    ),
    (
        "ov.ratings",
        "Ratings across reps",
        "Đánh giá theo nhân viên",
        "Оцінки за менеджерами",
    ),
    (
        "ov.report",
        "How good the scores are",
        "Độ chính xác của điểm",
        "Наскільки точні бали",
    ),
    (
        "ov.calibration",
        "Conversion by score decile",
        "Tỷ lệ chuyển đổi theo nhóm điểm",
        "Конверсія за децилями балу",
    ),
    (
        "ov.gains",
        "Conversions captured by the top leads",
        "Chuyển đổi nằm trong nhóm điểm cao nhất",
        "Частка конверсій у найкращих лідах",
    ),
    (
        "ov.no_outcomes",
        "No outcomes known yet.",
        "Chưa có kết quả nào.",
        "Результатів ще немає.",
    ),
    ("ov.none", "None.", "Không có.", "Немає."),
    ("ov.unassigned", "(nobody)", "(chưa giao)", "(нікому)"),
    (
        "models.list",
        "Stored models",
        "Các mô hình đã lưu",
        "Збережені моделі",
    ),
    ("models.active", "active", "đang dùng", "активна"),
    ("models.editor", "Model (TOML)", "Mô hình (TOML)", "Модель (TOML)"),
    ("models.valid", "Valid", "Hợp lệ", "Коректна"),
    ("models.save", "Save", "Lưu", "Зберегти"),
    (
        "models.backtest",
        "Backtest against known outcomes",
        "Kiểm tra với kết quả đã biết",
        "Перевірити на відомих результатах",
    ),
    ("models.activate", "Activate", "Kích hoạt", "Активувати"),
    ("models.rescoring", "Rescoring", "Đang chấm lại", "Переоцінювання"),
    ("admin.users", "Users", "Người dùng", "Користувачі"),
    (
        "admin.add_user",
        "Add a user",
        "Thêm người dùng",
        "Додати користувача",
    ),
    ("admin.webhooks", "Webhooks", "Webhook", "Вебхуки"),
    ("admin.delete", "Delete", "Xóa", "Видалити"),
    ("admin.add_webhook", "Subscribe", "Đăng ký", "Підписатися"),
    ("admin.role", "Role", "Vai trò", "Роль"),
    (
        "admin.events",
        "Happenings (comma-separated)",
        "Sự kiện (cách nhau bởi dấu phẩy)",
        "Події (через кому)",
    ),
    (
        "admin.secret",
        "Secret (16+ characters)",
        "Khóa bí mật (16+ ký tự)",
        "Секрет (16+ символів)",
    ),
    ("field.email", "E-mail", "E-mail", "E-mail"),
    ("field.phone", "Phone", "Điện thoại", "Телефон"),
    ("field.company", "Company", "Công ty", "Компанія"),
    ("field.job_title", "Job title", "Chức danh", "Посада"),
    ("field.industry", "Industry", "Ngành", "Галузь"),
    ("field.employees", "Employees", "Số nhân viên", "Працівників"),
    (
        "field.annual_revenue",
        "Annual revenue",
        "Doanh thu năm",
        "Річний дохід",
    ),
    ("field.country", "Country", "Quốc gia", "Країна"),
    (
        "field.region",
        "Province / region",
        "Tỉnh / khu vực",
        "Область / регіон",
    ),
    ("field.city", "City", "Thành phố", "Місто"),
    ("field.source", "Source", "Nguồn", "Джерело"),
    ("field.owner", "Owner", "Phụ trách", "Відповідальний"),
];

/// Is this one of the pages' languages?
pub fn known(locale: &str) -> bool {
    LOCALES.contains(&locale)
}

/// The language to greet a browser in, from its `Accept-Language`.
pub fn from_accept_language(header: Option<&str>, default: &str) -> String {
    header
        .unwrap_or("")
        .split(',')
        .filter_map(|part| part.split(';').next())
        .map(|tag| tag.trim().to_lowercase())
        .filter_map(|tag| tag.split('-').next().map(str::to_owned))
        .find(|l| known(l))
        .unwrap_or_else(|| default.to_owned())
}

/// One word in a language (English when missing).
pub fn word(locale: &str, key: &str) -> &'static str {
    WORDS
        .iter()
        .find(|w| w.0 == key)
        .map(|w| match locale {
            "vi" => w.2,
            "uk" => w.3,
            _ => w.1,
        })
        .unwrap_or("?")
}

/// Every word of a language, for the pages' script.
pub fn dictionary(locale: &str) -> Value {
    let mut m = Map::new();
    for w in WORDS {
        m.insert(w.0.to_owned(), Value::String(word(locale, w.0).to_owned()));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_translated_and_unique() {
        let mut keys = std::collections::HashSet::new();
        for w in WORDS {
            assert!(keys.insert(w.0), "`{}` twice", w.0);
            assert!(!w.1.is_empty() && !w.2.is_empty() && !w.3.is_empty(), "{}", w.0);
        }
        assert_eq!(from_accept_language(Some("uk-UA,uk;q=0.9,en;q=0.5"), "en"), "uk");
        assert_eq!(from_accept_language(Some("fr-FR, vi;q=0.8"), "en"), "vi");
        assert_eq!(from_accept_language(None, "en"), "en");
    }
}
