//! User-agent parsing with woothee (no data file to load). woothee names the OS after the device
//! (`iPhone`, `Mac OSX`) and keeps full versions; sessions show the names people know instead
//! (`iOS 17.4`, `macOS 14`, `Chrome 124`), so its answer is mapped here.

use auth_core::model::DeviceInfo;
use auth_core::ports::UserAgentParser;
use woothee::parser::{Parser, WootheeResult};

#[derive(Clone, Copy, Debug, Default)]
pub struct WootheeUserAgents;

const UNKNOWN: &str = "UNKNOWN";

fn known(value: &str) -> Option<&str> {
    (!value.is_empty() && value != UNKNOWN).then_some(value)
}

/// The first `parts` numeric components of `raw` (`10_15_7`, `17.4.1`), joined by dots, with a
/// trailing `.0` dropped (`17.0` reads `17`). `None` unless `raw` starts with a digit.
fn version(raw: &str, parts: usize) -> Option<String> {
    let numbers: Vec<&str> = raw
        .split(['.', '_'])
        .take(parts)
        .take_while(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    let numbers = match numbers.as_slice() {
        [major, "0"] => &[*major][..],
        all => all,
    };
    (!numbers.is_empty()).then(|| numbers.join("."))
}

/// The version right after `marker` in the user agent (`Mac OS X 14_4`), for the cases woothee
/// leaves without one.
fn version_after<'a>(user_agent: &'a str, marker: &str) -> Option<&'a str> {
    let start = user_agent.find(marker)? + marker.len();
    let rest = &user_agent[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

fn with_version(name: &str, version: Option<String>) -> String {
    match version {
        Some(version) => format!("{name} {version}"),
        None => name.to_owned(),
    }
}

/// What woothee found, plus the facts that need the raw string.
struct Parsed<'a> {
    result: WootheeResult<'a>,
    user_agent: &'a str,
}

impl Parsed<'_> {
    fn os_version(&self) -> Option<&str> {
        known(&self.result.os_version)
    }

    /// Android tablets send no `Mobile` token; woothee counts them as smartphones.
    fn is_tablet(&self) -> bool {
        match self.result.os {
            "iPad" => true,
            "Android" => !self.user_agent.contains("Mobile"),
            _ => false,
        }
    }

    fn device_type(&self) -> &'static str {
        match self.result.category {
            "pc" => "desktop",
            "smartphone" | "mobilephone" if self.is_tablet() => "tablet",
            "smartphone" | "mobilephone" => "mobile",
            "appliance" => "appliance",
            "crawler" => "bot",
            _ => "unknown",
        }
    }

    fn os(&self) -> String {
        match self.result.os {
            "iPhone" | "iPod" | "iOS" => {
                with_version("iOS", self.os_version().and_then(|v| version(v, 2)))
            }
            "iPad" => {
                let release = self.os_version().and_then(|v| version(v, 2));
                // iPads run iPadOS from 13 on; before that it was iOS.
                let major = release
                    .as_deref()
                    .and_then(|v| v.split('.').next())
                    .and_then(|major| major.parse::<u32>().ok());
                let name = if major.is_some_and(|m| m < 13) {
                    "iOS"
                } else {
                    "iPadOS"
                };
                with_version(name, release)
            }
            "Mac OSX" => {
                let raw = self
                    .os_version()
                    .or_else(|| version_after(self.user_agent, "Mac OS X "));
                // Up to 10.15 the minor number is the release; from 11 on the major is.
                let release = raw.and_then(|raw| match version(raw, 2) {
                    Some(v) if v.starts_with("10.") => Some(v),
                    _ => version(raw, 1),
                });
                with_version("macOS", release)
            }
            "Android" => with_version("Android", self.os_version().and_then(|v| version(v, 2))),
            "Windows UNKNOWN Ver" => "Windows".to_owned(),
            "Windows Phone OS" => "Windows Phone".to_owned(),
            other => known(other).unwrap_or("Unknown").to_owned(),
        }
    }

    fn browser(&self) -> String {
        let Some(name) = known(self.result.name) else {
            return "Unknown".to_owned();
        };
        let raw = known(self.result.version);
        match name {
            // Safari's release is major.minor, from `Version/`.
            "Safari" => with_version(name, raw.and_then(|v| version(v, 2))),
            "SamsungBrowser" => with_version("Samsung Internet", raw.and_then(|v| version(v, 1))),
            // A webview's `Version/4.0` is a constant, not the engine's release.
            "Webview" => "WebView".to_owned(),
            _ => with_version(name, raw.and_then(|v| version(v, 1))),
        }
    }

    fn device_name(&self) -> String {
        let os = self.result.os;
        match os {
            "iPhone" => "iPhone".to_owned(),
            "iPad" => "iPad".to_owned(),
            "iPod" => "iPod touch".to_owned(),
            "Mac OSX" | "Mac OS Classic" => "Mac".to_owned(),
            "Android" if self.is_tablet() => "Android tablet".to_owned(),
            "Android" => "Android phone".to_owned(),
            "ChromeOS" => "Chromebook".to_owned(),
            "Windows Phone OS" => "Windows Phone".to_owned(),
            "Linux" => "Linux PC".to_owned(),
            _ if os.starts_with("Windows") => "Windows PC".to_owned(),
            _ if self.result.category == "crawler" => {
                known(self.result.name).unwrap_or("Bot").to_owned()
            }
            _ => known(os).unwrap_or("Unknown device").to_owned(),
        }
    }
}

impl UserAgentParser for WootheeUserAgents {
    fn parse(&self, user_agent: &str) -> DeviceInfo {
        let Some(result) = Parser::new().parse(user_agent) else {
            return DeviceInfo {
                device_type: "unknown".into(),
                device_name: "Unknown device".into(),
                browser: "Unknown".into(),
                os: "Unknown".into(),
            };
        };
        let parsed = Parsed { result, user_agent };
        DeviceInfo {
            device_type: parsed.device_type().to_owned(),
            device_name: parsed.device_name(),
            browser: parsed.browser(),
            os: parsed.os(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (device type, device name, browser, os) of a real user agent.
    fn facts(user_agent: &str) -> (String, String, String, String) {
        let info = WootheeUserAgents.parse(user_agent);
        (info.device_type, info.device_name, info.browser, info.os)
    }

    fn expect(user_agent: &str, device_type: &str, device_name: &str, browser: &str, os: &str) {
        assert_eq!(
            facts(user_agent),
            (
                device_type.to_owned(),
                device_name.to_owned(),
                browser.to_owned(),
                os.to_owned()
            ),
            "{user_agent}"
        );
    }

    #[test]
    fn safari_on_an_iphone_is_ios_with_safaris_major_and_minor() {
        expect(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            "mobile",
            "iPhone",
            "Safari 17.4",
            "iOS 17.4",
        );
    }

    #[test]
    fn chrome_and_firefox_on_an_iphone_keep_their_own_names() {
        expect(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
            "mobile",
            "iPhone",
            "Chrome 124",
            "iOS 17.4",
        );
        expect(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
            "mobile",
            "iPhone",
            "Firefox 125",
            "iOS 17.4",
        );
    }

    #[test]
    fn an_ipad_is_a_tablet_on_ipados_and_ios_before_13() {
        expect(
            "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            "tablet",
            "iPad",
            "Safari 17.4",
            "iPadOS 17.4",
        );
        expect(
            "Mozilla/5.0 (iPad; CPU OS 12_5_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Mobile/15E148 Safari/604.1",
            "tablet",
            "iPad",
            "Safari 12.1",
            "iOS 12.5",
        );
    }

    #[test]
    fn a_mac_is_macos_with_the_release_its_user_agent_states() {
        // Safari and Chrome freeze the version at 10.15.7; it is shown as sent.
        expect(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
            "desktop",
            "Mac",
            "Safari 17.4",
            "macOS 10.15",
        );
        expect(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "desktop",
            "Mac",
            "Chrome 124",
            "macOS 10.15",
        );
        // woothee finds no version in Firefox's dotted form; it is read from the string.
        expect(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
            "desktop",
            "Mac",
            "Firefox 125",
            "macOS 14",
        );
    }

    #[test]
    fn safari_drops_a_zero_minor_version() {
        expect(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",
            "desktop",
            "Mac",
            "Safari 17",
            "macOS 10.15",
        );
    }

    #[test]
    fn windows_browsers_are_named_with_their_major_version() {
        let windows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
        expect(windows, "desktop", "Windows PC", "Chrome 124", "Windows 10");
        expect(
            &format!("{windows} Edg/124.0.2478.51"),
            "desktop",
            "Windows PC",
            "Edge 124",
            "Windows 10",
        );
        expect(
            &format!("{windows} OPR/110.0.0.0"),
            "desktop",
            "Windows PC",
            "Opera 110",
            "Windows 10",
        );
        expect(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "desktop",
            "Windows PC",
            "Firefox 128",
            "Windows 10",
        );
        expect(
            "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
            "desktop",
            "Windows PC",
            "Firefox 115",
            "Windows 7",
        );
    }

    #[test]
    fn android_phones_and_tablets_carry_the_android_release() {
        expect(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
            "mobile",
            "Android phone",
            "Chrome 124",
            "Android 14",
        );
        expect(
            "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
            "mobile",
            "Android phone",
            "Samsung Internet 24",
            "Android 14",
        );
        expect(
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64",
            "mobile",
            "Android phone",
            "Edge 124",
            "Android 14",
        );
        expect(
            "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "tablet",
            "Android tablet",
            "Chrome 124",
            "Android 13",
        );
        expect(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36",
            "mobile",
            "Android phone",
            "WebView",
            "Android 14",
        );
    }

    #[test]
    fn linux_and_chromeos_desktops() {
        expect(
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "desktop",
            "Linux PC",
            "Firefox 128",
            "Linux",
        );
        expect(
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "desktop",
            "Chromebook",
            "Chrome 124",
            "ChromeOS",
        );
    }

    #[test]
    fn crawlers_are_bots_named_after_themselves() {
        expect(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "bot",
            "Googlebot",
            "Googlebot",
            "Unknown",
        );
    }

    #[test]
    fn gibberish_is_unknown_not_an_error() {
        let info = WootheeUserAgents.parse("curl-ish ???");
        assert_eq!(info.device_type, "unknown");
    }
}
