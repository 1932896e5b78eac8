//! What chat is made of: rooms, participants, messages, and the events a socket sees.

use std::fmt;

use chrono::{DateTime, Utc};
use kernel::UserId;

kernel::typed_id!(
    /// Identifies a chat message.
    MessageId
);

/// A room name: 1–64 characters of letters, digits, `_`, `-`, `.` and `:`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(String);

impl RoomName {
    pub const MAX: usize = 64;

    /// The room every connection is in.
    #[must_use]
    pub fn general() -> Self {
        Self("general".to_owned())
    }

    /// # Errors
    /// [`ChatError`] `VALIDATION_ERROR` naming the rule.
    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        let allowed = raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
        if allowed && (1..=Self::MAX).contains(&raw.len()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ChatError::invalid(
                "room must be 1-64 characters of letters, digits, _ - . or :",
            ))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who is behind a connection, as the other participants see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    pub user_id: UserId,
    pub display_name: String,
}

/// One socket, on any instance: the instance's number in the high bits keeps ids apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub id: MessageId,
    pub room: RoomName,
    pub user_id: UserId,
    pub display_name: String,
    pub content: String,
    pub timestamp: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Online,
    Away,
    Offline,
}

impl Status {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Away => "away",
            Self::Offline => "offline",
        }
    }

    /// What a client may set: `online` or `away` (`offline` is when its last socket closes).
    ///
    /// # Errors
    /// [`ChatError`] `VALIDATION_ERROR`.
    pub fn chosen(raw: &str) -> Result<Self, ChatError> {
        match raw {
            "online" => Ok(Self::Online),
            "away" => Ok(Self::Away),
            _ => Err(ChatError::invalid("status must be online or away")),
        }
    }
}

/// What a client asks for, as the gateway parsed it from a frame (values still unchecked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    JoinRoom { room: String },
    LeaveRoom { room: String },
    Message { room: String, content: String },
    Typing { room: String, is_typing: bool },
    Presence { status: String },
    History { room: String, limit: Option<u32> },
}

/// What a socket is sent.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Connected {
        user_id: UserId,
        rooms: Vec<RoomName>,
    },
    Message(ChatMessage),
    Typing {
        room: RoomName,
        user: Participant,
        is_typing: bool,
    },
    Presence {
        user: Participant,
        status: Status,
    },
    UserJoined {
        room: RoomName,
        user: Participant,
    },
    UserLeft {
        room: RoomName,
        user: Participant,
    },
    History {
        room: RoomName,
        messages: Vec<ChatMessage>,
    },
    Error(ChatError),
}

/// Why a command was refused; the socket stays open unless [`ChatError::closes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatError {
    pub code: ChatErrorCode,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatErrorCode {
    /// Not JSON, not `{event, data}`, or data of the wrong shape.
    InvalidFrame,
    UnknownEvent,
    ValidationError,
    NotInRoom,
    TooManyRooms,
    /// The user's message rate is exceeded: sent once, then the socket closes.
    TooManyRequests,
    /// Storage or the bus failed; the command may be retried.
    Unavailable,
}

impl ChatErrorCode {
    pub const ALL: [Self; 7] = [
        Self::InvalidFrame,
        Self::UnknownEvent,
        Self::ValidationError,
        Self::NotInRoom,
        Self::TooManyRooms,
        Self::TooManyRequests,
        Self::Unavailable,
    ];

    /// The code spelled `raw` (as [`ChatErrorCode::as_str`] spells it).
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == raw)
    }

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFrame => "INVALID_FRAME",
            Self::UnknownEvent => "UNKNOWN_EVENT",
            Self::ValidationError => "VALIDATION_ERROR",
            Self::NotInRoom => "NOT_IN_ROOM",
            Self::TooManyRooms => "TOO_MANY_ROOMS",
            Self::TooManyRequests => "TOO_MANY_REQUESTS",
            Self::Unavailable => "UNAVAILABLE",
        }
    }
}

impl ChatError {
    pub fn new(code: ChatErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ChatErrorCode::ValidationError, message)
    }

    /// Whether the socket closes after this error is sent.
    #[must_use]
    pub fn closes(&self) -> bool {
        self.code == ChatErrorCode::TooManyRequests
    }
}

impl From<kernel::StoreError> for ChatError {
    fn from(error: kernel::StoreError) -> Self {
        tracing::warn!(%error, "chat storage failed");
        Self::new(ChatErrorCode::Unavailable, "chat is unavailable, try again")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_short_and_plain() {
        for good in [
            "general",
            "team-7",
            "a",
            "project:alpha.v2",
            &"x".repeat(64),
        ] {
            assert!(RoomName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "two words",
            "ünïcode",
            "a/b",
            &"x".repeat(65),
            "{\"$ne\":1}",
        ] {
            assert_eq!(
                RoomName::parse(bad).map_err(|e| e.code),
                Err(ChatErrorCode::ValidationError),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_error_code_reads_back_from_its_spelling() {
        for code in ChatErrorCode::ALL {
            assert_eq!(ChatErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ChatErrorCode::parse("NOPE"), None);
    }

    #[test]
    fn clients_choose_online_or_away_only() {
        assert_eq!(Status::chosen("away"), Ok(Status::Away));
        assert!(Status::chosen("offline").is_err());
        assert!(Status::chosen("Online").is_err());
    }
}
