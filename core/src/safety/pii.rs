//! PII detection: regexes find candidates, validators (checksums, date and octet ranges,
//! digit-run edges, context words) throw out the look-alikes, and overlaps are resolved by a
//! fixed priority so each span is reported once.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv6Addr;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The kinds of personal data the detector knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// E-mail address.
    Email,
    /// Chinese resident identity card number (GB 11643).
    IdCard,
    /// Bank card number (Luhn).
    BankCard,
    /// Chinese mobile number.
    Mobile,
    /// Chinese landline number with area code.
    Landline,
    /// IPv6 address.
    Ipv6,
    /// IPv4 address.
    Ipv4,
    /// Chinese passport number.
    Passport,
    /// Medical-record or patient number (patterns from the policy).
    MedicalRecord,
    /// Date of birth next to a birth keyword.
    Dob,
    /// Postal address.
    Address,
    /// Person name next to a cue (患者, 先生, Mr., Patient:).
    Name,
}

impl PiiKind {
    /// Every kind, in overlap-resolution priority order.
    pub const ALL: [PiiKind; 12] = [
        PiiKind::Email,
        PiiKind::IdCard,
        PiiKind::BankCard,
        PiiKind::Mobile,
        PiiKind::Landline,
        PiiKind::Ipv6,
        PiiKind::Ipv4,
        PiiKind::Passport,
        PiiKind::MedicalRecord,
        PiiKind::Dob,
        PiiKind::Address,
        PiiKind::Name,
    ];

    /// The snake_case name used in policies and reports.
    pub fn name(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::IdCard => "id_card",
            PiiKind::BankCard => "bank_card",
            PiiKind::Mobile => "mobile",
            PiiKind::Landline => "landline",
            PiiKind::Ipv6 => "ipv6",
            PiiKind::Ipv4 => "ipv4",
            PiiKind::Passport => "passport",
            PiiKind::MedicalRecord => "medical_record",
            PiiKind::Dob => "dob",
            PiiKind::Address => "address",
            PiiKind::Name => "name",
        }
    }

    /// The kind for a name, if it is one.
    pub fn from_name(name: &str) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One detected item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PiiMatch {
    /// What it is.
    pub kind: PiiKind,
    /// Byte offset of the value (context words such as "MRN:" are not part of it).
    pub start: usize,
    /// Byte offset just past the value.
    pub end: usize,
}

/// Default medical-record patterns; `v` is the part redacted.
pub const DEFAULT_MRN_PATTERNS: [&str; 2] = [
    r"(?i:MRN|patient\s*(?:id|no\.?|number)|medical\s+record\s+(?:no\.?|number))\s*[:：#]?\s*(?P<v>[A-Za-z]{0,2}[0-9]{6,10})",
    r"(?:住院号|病历号|病案号|门诊号|就诊号|登记号)\s*[:：]?\s*(?P<v>[A-Za-z]{0,2}[0-9]{4,12})",
];

/// Common Chinese surnames, compound ones first. Words that are far more often function
/// words (于, 和, 向) are left out on purpose.
const SURNAMES: &str = "欧阳|司马|诸葛|上官|东方|皇甫|尉迟|公孙|慕容|令狐|司徒|夏侯|\
王|李|张|刘|陈|杨|黄|赵|吴|周|徐|孙|马|朱|胡|郭|林|何|高|罗|郑|梁|谢|宋|唐|许|韩|冯|邓|曹|彭|\
曾|肖|田|董|袁|潘|蒋|蔡|余|杜|叶|程|苏|魏|吕|丁|任|沈|姚|卢|姜|崔|钟|谭|陆|汪|范|金|石|廖|贾|\
夏|韦|付|傅|方|白|邹|孟|熊|秦|邱|江|尹|薛|闫|段|雷|侯|龙|史|陶|黎|贺|顾|毛|郝|龚|邵|万|钱|严|\
覃|武|戴|莫|孔|汤|常|温|康|施|文|牛|樊|葛|邢|安|齐|易|乔|伍|庞|颜|倪|庄|聂|章|鲁|岳|翟|殷|詹|\
申|欧|耿|关|兰|焦|俞|左|柳|甘|祝|包|宁|尚|符|舒|阮|柯|纪|梅|童|凌|毕|单|季|裴|霍|涂|成|苗|谷|\
盛|曲|翁|冉|骆|蓝|路|游|辛|靳|管|柴|蒙|鲍|华|喻|祁|蒲|房|滕|屈|饶|解|牟|艾|尤|阳|时|穆|农|司|\
卓|古|吉|缪|简|车|项|连|芦|麦|褚|娄|窦|戚|岑|景|党|宫|费|卜|冷|晏|席|卫|米|柏|宗|瞿|桂|全|佟|\
应|臧|闵|苟|邬|边|卞|姬|师|和|仇|栾|隋|商|刁|沙|荣|巫|寇|桑|郎|甄|丛|仲|虞|敖|巩|明|佘|池|查|\
麻|苑|迟|邝";

/// Chars that end a name rather than continue it (verbs, particles, symptoms, titles).
const NAME_STOP: &str = "的了是在有和与及或说因为被把对向于从到今昨已曾将要会能可也都还又就才\
主诉患病症痛热烧血压糖咳喘岁龄性男女者医护院科室床号先生士姐老师同志教授夫";

/// Chars that cannot start or continue a place name (pronouns, verbs, particles).
const ADDR_STOP: &str = "在住于是的到往从我你他她它们家址与及近为去来搬送寄位处就请把被对说了";

const PROVINCES: &str = "北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|\
山东|河南|湖北|湖南|广东|海南|四川|贵州|云南|陕西|甘肃|青海|台湾|内蒙古|广西|西藏|宁夏|新疆|香港|澳门";

const MONTHS: &str =
    "Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?";

/// Words after which a PII value may follow; the stream filter holds text back from them.
const CUES: &str = r"患者|病人|病患|姓名|名字|家属|联系人|就诊人|先生|女士|小姐|出生|生日|住院号|病历号|病案号|门诊号|就诊号|地址|住址|身份证|证件号|电话|手机|护照|卡号|[省市区县路街]|(?-u:\b)(?i:mrn|patient|name|mrs?|ms|miss|dr|prof|dob|born|birth)(?-u:\b)";

/// Which kinds to detect and the site-specific medical-record patterns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PiiConfig {
    /// Kinds to detect.
    pub kinds: BTreeSet<PiiKind>,
    /// Regexes for medical-record numbers; a named group `v` marks the value to redact.
    pub medical_record_patterns: Vec<String>,
}

impl Default for PiiConfig {
    fn default() -> Self {
        PiiConfig {
            kinds: PiiKind::ALL.into_iter().collect(),
            medical_record_patterns: DEFAULT_MRN_PATTERNS.map(String::from).to_vec(),
        }
    }
}

/// A compiled detector.
#[derive(Debug, Clone)]
pub struct PiiDetector {
    rules: Vec<(PiiKind, Regex)>,
    cues: Regex,
    surname_chars: HashSet<char>,
}

fn compile(pattern: &str) -> Result<Regex> {
    Regex::new(pattern).map_err(|e| Error::InvalidArgument(format!("bad PII pattern: {e}")))
}

impl PiiDetector {
    /// Compiles the rules for the enabled kinds.
    pub fn new(config: &PiiConfig) -> Result<PiiDetector> {
        let name_ch = format!("[\\p{{Han}}--[{NAME_STOP}]]");
        let addr_ch = format!("[\\p{{Han}}--[{ADDR_STOP}]]");
        let date = format!(
            r"(?:(?:19|20)[0-9]{{2}}(?:[-/.][0-9]{{1,2}}[-/.][0-9]{{1,2}}|年[0-9]{{1,2}}月[0-9]{{1,2}}[日号]?)|[0-9]{{1,2}}/[0-9]{{1,2}}/(?:19|20)[0-9]{{2}}|[0-9]{{1,2}}\s(?:{MONTHS})\.?,?\s(?:19|20)[0-9]{{2}}|(?:{MONTHS})\.?\s[0-9]{{1,2}}(?:st|nd|rd|th)?,?\s(?:19|20)[0-9]{{2}})"
        );
        let mut rules = Vec::new();
        for kind in &config.kinds {
            let patterns: Vec<String> = match kind {
                PiiKind::Email => vec![
                    r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}".into(),
                ],
                PiiKind::IdCard => vec![r"[1-9][0-9]{16}[0-9Xx]".into()],
                PiiKind::BankCard => vec![
                    r"[0-9]{13,19}|[0-9]{4}(?:[ \-][0-9]{4}){2,3}(?:[ \-][0-9]{1,4})?".into(),
                ],
                PiiKind::Mobile => vec![
                    r"(?:(?:\+|00)86[ \-]?)?1[3-9][0-9](?:[0-9]{8}|[ \-][0-9]{4}[ \-][0-9]{4})"
                        .into(),
                ],
                PiiKind::Landline => vec![
                    r"(?:\(0[0-9]{2,3}\)\s?|0[0-9]{2,3}[\- ])[2-9][0-9]{6,7}(?:-[0-9]{1,5})?"
                        .into(),
                ],
                PiiKind::Ipv6 => vec![r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}".into()],
                PiiKind::Ipv4 => vec![r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}".into()],
                PiiKind::Passport => vec![r"E[0-9A-HJ-NP-Z][0-9]{7}|G[0-9]{8}".into()],
                PiiKind::MedicalRecord => config.medical_record_patterns.clone(),
                PiiKind::Dob => vec![format!(
                    r"(?:出生日期|出生年月日?|出生于|出生|生日|(?i:dob|d\.o\.b\.?|date of birth|birth\s?date|born(?: on)?))[\s:：,，是为]{{0,4}}(?P<v>{date})"
                )],
                PiiKind::Name => vec![
                    format!(
                        r"(?:患者|病人|病患|姓名|名字|家属|联系人|就诊人|受检者|申请人|客户)\s*[:：]?\s*(?P<v>(?:{SURNAMES}){name_ch}{{1,2}})"
                    ),
                    format!(
                        r"(?P<v>(?:{SURNAMES}){name_ch}{{1,2}})(?:先生|女士|小姐|医生|大夫|护士|老师|教授)"
                    ),
                    r"(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s(?P<v>[A-Z][a-z]+(?:\s[A-Z][a-z]+)?)".into(),
                    r"(?i:patient(?:\s+name)?|name)\s*[:：]\s*(?P<v>[A-Z][a-z]+(?:\s[A-Z][a-z]+){0,2})"
                        .into(),
                ],
                PiiKind::Address => vec![
                    format!(
                        r"(?:(?:{PROVINCES})(?:省|市|自治区|特别行政区)?)?(?:{addr_ch}{{2,5}}?[市州盟])?(?:{addr_ch}{{1,5}}?[区县旗])?(?:{addr_ch}{{1,6}}?(?:镇|乡|街道))?{addr_ch}{{1,8}}?(?:路|街|大道|大街|巷|胡同|弄)(?:[一二三四五六七八九十]段)?(?:[0-9]{{1,5}}|[一二三四五六七八九十百零〇]{{1,4}})号(?:院)?(?:[0-9]{{1,4}}(?:栋|幢|号楼|楼))?(?:[0-9]{{1,3}}单元)?(?:[0-9]{{1,5}}室)?"
                    ),
                    r"(?-u:\b)[0-9]{1,5}\s(?:[A-Z][a-z]+\s){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl)(?-u:\b)\.?"
                        .into(),
                ],
            };
            for p in patterns {
                rules.push((*kind, compile(&p)?));
            }
        }
        rules.sort_by_key(|(k, _)| PiiKind::ALL.iter().position(|x| x == k));
        Ok(PiiDetector {
            rules,
            cues: compile(CUES)?,
            surname_chars: SURNAMES
                .split('|')
                .filter_map(|s| s.chars().next())
                .collect(),
        })
    }

    /// Non-overlapping items in order of position.
    pub fn detect(&self, text: &str) -> Vec<PiiMatch> {
        // start → (end, kind); rules run in priority order, so the first claim wins.
        let mut found: BTreeMap<usize, (usize, PiiKind)> = BTreeMap::new();
        let free = |found: &BTreeMap<usize, (usize, PiiKind)>, start: usize, end: usize| {
            found
                .range(..end)
                .next_back()
                .is_none_or(|(_, (e, _))| *e <= start)
        };
        for (kind, re) in &self.rules {
            let has_v = re.capture_names().any(|n| n == Some("v"));
            let mut add = |start: usize, end: usize| {
                if validate(*kind, text, start, end) && free(&found, start, end) {
                    found.insert(start, (end, *kind));
                }
            };
            if has_v {
                for caps in re.captures_iter(text) {
                    if let Some(v) = caps.name("v") {
                        add(v.start(), v.end());
                    }
                }
            } else {
                for m in re.find_iter(text) {
                    add(m.start(), m.end());
                }
            }
        }
        // A name found once next to a cue is the same name elsewhere in the text.
        let mut names: Vec<&str> = found
            .iter()
            .filter(|(s, (e, k))| *k == PiiKind::Name && text[**s..*e].chars().count() >= 2)
            .map(|(s, (e, _))| &text[*s..*e])
            .collect();
        names.sort_unstable();
        names.dedup();
        if !names.is_empty() {
            if let Ok(ac) = aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(&names)
            {
                for m in ac.find_iter(text) {
                    if free(&found, m.start(), m.end()) {
                        found.insert(m.start(), (m.end(), PiiKind::Name));
                    }
                }
            }
        }
        found
            .into_iter()
            .map(|(start, (end, kind))| PiiMatch { kind, start, end })
            .collect()
    }

    /// Where a PII item could still be starting in `text[from..]` if more text follows:
    /// a trailing run of digits/e-mail/IP chars, a recent context word, a trailing surname,
    /// or an item that touches the end and might grow. `None` when the tail is plain prose.
    pub(crate) fn open_start(&self, text: &str, from: usize) -> Option<usize> {
        let tail = &text[from..];
        let mut hold = text.len();
        // Trailing run of chars that occur in numbers, e-mails and IPs.
        for (i, c) in tail.char_indices().rev() {
            let runny = c.is_ascii_alphanumeric() || "@._%+-:()#/".contains(c);
            // A space after a digit may sit inside a number ("+86 138 1234 5678").
            let gap = c == ' '
                && text[..from + i]
                    .bytes()
                    .next_back()
                    .is_some_and(|b| b.is_ascii_digit());
            if !(runny || gap) || text.len() - (from + i) > 64 {
                break;
            }
            hold = from + i;
        }
        // Context words and surnames among the last 24 chars.
        let window = tail
            .char_indices()
            .rev()
            .nth(23)
            .map_or(from, |(i, _)| from + i);
        if let Some(m) = self.cues.find(&text[window..]) {
            hold = hold.min(window + m.start());
        }
        let last3 = tail
            .char_indices()
            .rev()
            .nth(2)
            .map_or(from, |(i, _)| from + i);
        if let Some((i, _)) = text[last3..]
            .char_indices()
            .find(|(_, c)| self.surname_chars.contains(c))
        {
            hold = hold.min(last3 + i);
        }
        for m in self.detect(&text[window.min(hold)..]) {
            if window.min(hold) + m.end + 1 >= text.len() {
                hold = hold.min(window.min(hold) + m.start);
            }
        }
        (hold < text.len()).then_some(hold)
    }
}

fn is_digit_at(text: &str, i: usize) -> bool {
    text.as_bytes().get(i).is_some_and(u8::is_ascii_digit)
}

fn byte_before(text: &str, i: usize) -> Option<u8> {
    i.checked_sub(1).map(|j| text.as_bytes()[j])
}

/// Digits embedded in longer digit (or letter+digit) runs are not items.
fn clean_digit_edges(text: &str, start: usize, end: usize, letters_too: bool) -> bool {
    let bad = |b: u8| b.is_ascii_digit() || (letters_too && b.is_ascii_alphabetic());
    !byte_before(text, start).is_some_and(bad) && !text.as_bytes().get(end).is_some_and(|b| bad(*b))
}

fn validate(kind: PiiKind, text: &str, start: usize, end: usize) -> bool {
    let s = &text[start..end];
    match kind {
        PiiKind::IdCard => clean_digit_edges(text, start, end, true) && valid_id(s),
        PiiKind::BankCard => {
            let digits: Vec<u8> = s
                .bytes()
                .filter(u8::is_ascii_digit)
                .map(|b| b - b'0')
                .collect();
            clean_digit_edges(text, start, end, true)
                && (13..=19).contains(&digits.len())
                && (2..=6).contains(&digits[0])
                && luhn(&digits)
        }
        PiiKind::Mobile => {
            clean_digit_edges(text, start, end, true) && byte_before(text, start) != Some(b'+')
        }
        PiiKind::Landline => clean_digit_edges(text, start, end, false),
        PiiKind::Passport => clean_digit_edges(text, start, end, true),
        PiiKind::MedicalRecord => !is_digit_at(text, end),
        PiiKind::Ipv4 => {
            let before = byte_before(text, start);
            let after = text.as_bytes().get(end).copied();
            let dotted_on = after == Some(b'.') && is_digit_at(text, end + 1);
            !before.is_some_and(|b| b.is_ascii_digit() || b == b'.')
                && !after.is_some_and(|b| b.is_ascii_digit())
                && !dotted_on
                && s.split('.').all(|o| {
                    o.parse::<u16>().is_ok_and(|v| v <= 255) && (o == "0" || !o.starts_with('0'))
                })
        }
        PiiKind::Ipv6 => {
            let edge = |b: u8| b.is_ascii_alphanumeric() || b == b':' || b == b'.';
            !byte_before(text, start).is_some_and(edge)
                && !text.as_bytes().get(end).is_some_and(|b| edge(*b))
                && s.split(':').filter(|g| !g.is_empty()).count() >= 2
                && s.bytes().filter(u8::is_ascii_hexdigit).count() >= 5
                && s.parse::<Ipv6Addr>().is_ok()
        }
        PiiKind::Dob => !is_digit_at(text, end) && valid_date_text(s),
        PiiKind::Email => {
            !byte_before(text, start).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.')
        }
        PiiKind::Name | PiiKind::Address => true,
    }
}

/// GB 11643 checksum plus a plausible birth date.
fn valid_id(s: &str) -> bool {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = s.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(W)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    if CHECK[(sum % 11) as usize] != b[17].to_ascii_uppercase() {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
    let year = num(6..10);
    (1900..=2100).contains(&year) && valid_date(year, num(10..12), num(12..14))
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn valid_date(year: u32, month: u32, day: u32) -> bool {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// Checks a date written as Y-M-D, Y年M月D日, M/D/Y, "D Month Y" or "Month D, Y".
fn valid_date_text(s: &str) -> bool {
    let nums: Vec<u32> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect();
    let lower = s.to_ascii_lowercase();
    let month_name = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| lower.contains(m))
    .map(|i| i as u32 + 1);
    match (month_name, nums.as_slice()) {
        (Some(m), [a, y]) | (Some(m), [y, a]) if *y >= 1900 => valid_date(*y, m, *a),
        (None, [y, m, d]) if *y >= 1900 => valid_date(*y, *m, *d),
        (None, [m, d, y]) if *y >= 1900 => valid_date(*y, *m, *d),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators() {
        assert!(valid_id("11010519491231002X"));
        assert!(!valid_id("110105194912310021"));
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(valid_date_text("1990年2月28日"));
        assert!(!valid_date_text("1990-02-30"));
        assert!(valid_date_text("March 3, 1985"));
    }

    #[test]
    fn open_start_only_for_pii_like_tails() {
        let d = PiiDetector::new(&PiiConfig::default()).unwrap();
        assert_eq!(d.open_start("call 138", 0), Some(5));
        assert_eq!(d.open_start("今天天气不错。", 0), None);
        assert_eq!(d.open_start("患者", 0), Some(0));
    }
}
