//! The chat's wire format, shared by the WebSocket and Socket.IO endpoints: an event name and
//! a JSON payload each way, with the contract's camelCase field names.

use chat_core::model::{ChatError, ChatErrorCode, ChatMessage, Command, Event, Participant};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Room {
    room: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    room: String,
    content: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Typing {
    room: String,
    is_typing: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Presence {
    status: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct History {
    room: String,
    #[serde(default)]
    limit: Option<u32>,
}

fn data<T: serde::de::DeserializeOwned>(event: &str, data: Value) -> Result<T, ChatError> {
    serde_json::from_value(data)
        .map_err(|error| ChatError::new(ChatErrorCode::InvalidFrame, format!("{event}: {error}")))
}

/// The command an event asks for.
///
/// # Errors
/// `UNKNOWN_EVENT` for an event the chat does not have, `INVALID_FRAME` for data of the
/// wrong shape.
pub fn command(event: &str, payload: Value) -> Result<Command, ChatError> {
    Ok(match event {
        "joinRoom" => Command::JoinRoom {
            room: data::<Room>(event, payload)?.room,
        },
        "leaveRoom" => Command::LeaveRoom {
            room: data::<Room>(event, payload)?.room,
        },
        "message" => {
            let Message { room, content } = data(event, payload)?;
            Command::Message { room, content }
        }
        "typing" => {
            let Typing { room, is_typing } = data(event, payload)?;
            Command::Typing { room, is_typing }
        }
        "presence" => Command::Presence {
            status: data::<Presence>(event, payload)?.status,
        },
        "history" => {
            let History { room, limit } = data(event, payload)?;
            Command::History { room, limit }
        }
        _ => {
            return Err(ChatError::new(
                ChatErrorCode::UnknownEvent,
                format!("unknown event {event:?}"),
            ));
        }
    })
}

/// A WebSocket text frame, `{"event": …, "data": …}`.
#[derive(Deserialize)]
struct Frame {
    event: String,
    #[serde(default)]
    data: Value,
}

/// The command a WebSocket text frame asks for.
///
/// # Errors
/// As [`command`], and `INVALID_FRAME` when the text is not such an object.
pub fn frame_command(text: &str) -> Result<Command, ChatError> {
    let frame: Frame = serde_json::from_str(text).map_err(|error| {
        ChatError::new(
            ChatErrorCode::InvalidFrame,
            format!("a frame is a JSON object {{\"event\", \"data\"}}: {error}"),
        )
    })?;
    command(&frame.event, frame.data)
}

fn person(user: &Participant) -> (String, String) {
    (user.user_id.to_string(), user.display_name.clone())
}

fn message(message: &ChatMessage) -> Value {
    json!({
        "id": message.id.as_str(),
        "room": message.room.as_str(),
        "userId": message.user_id.as_str(),
        "displayName": message.display_name,
        "content": message.content,
        "timestamp": message.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
}

/// An event's name and payload.
#[must_use]
pub fn event(event: &Event) -> (&'static str, Value) {
    match event {
        Event::Connected { user_id, rooms } => (
            "connected",
            json!({ "userId": user_id.as_str(), "rooms": rooms.iter().map(|r| r.as_str()).collect::<Vec<_>>() }),
        ),
        Event::Message(sent) => ("message", message(sent)),
        Event::Typing {
            room,
            user,
            is_typing,
        } => {
            let (user_id, display_name) = person(user);
            (
                "typing",
                json!({ "room": room.as_str(), "userId": user_id, "displayName": display_name, "isTyping": is_typing }),
            )
        }
        Event::Presence { user, status } => {
            let (user_id, display_name) = person(user);
            (
                "presence",
                json!({ "userId": user_id, "displayName": display_name, "status": status.as_str() }),
            )
        }
        Event::UserJoined { room, user } | Event::UserLeft { room, user } => {
            let (user_id, display_name) = person(user);
            let name = if matches!(event, Event::UserJoined { .. }) {
                "userJoined"
            } else {
                "userLeft"
            };
            (
                name,
                json!({ "room": room.as_str(), "userId": user_id, "displayName": display_name }),
            )
        }
        Event::History { room, messages } => (
            "history",
            json!({ "room": room.as_str(), "messages": messages.iter().map(message).collect::<Vec<_>>() }),
        ),
        Event::Error(error) => (
            "error",
            json!({ "code": error.code.as_str(), "message": error.message }),
        ),
    }
}

/// The rendering slots of a [`chat_core::Delivery`], one per endpoint.
pub const WEBSOCKET: usize = 0;
pub const SOCKET_IO: usize = 1;

/// An event as a WebSocket text frame.
#[must_use]
pub fn frame(sent: &Event) -> String {
    let (name, data) = event(sent);
    json!({ "event": name, "data": data }).to_string()
}

/// An event as a Socket.IO EVENT packet on the default namespace, `42["name", data]`.
#[must_use]
pub fn packet(sent: &Event) -> String {
    let (name, data) = event(sent);
    format!("42{}", json!([name, data]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_become_commands_and_bad_ones_say_why() {
        assert_eq!(
            frame_command(r#"{"event":"typing","data":{"room":"general","isTyping":true}}"#),
            Ok(Command::Typing {
                room: "general".into(),
                is_typing: true
            })
        );
        assert_eq!(
            frame_command(r#"{"event":"history","data":{"room":"general"}}"#),
            Ok(Command::History {
                room: "general".into(),
                limit: None
            })
        );
        for (text, code) in [
            ("not json", ChatErrorCode::InvalidFrame),
            ("[1,2]", ChatErrorCode::InvalidFrame),
            (
                r#"{"event":"message","data":{"room":"general"}}"#,
                ChatErrorCode::InvalidFrame,
            ),
            (
                r#"{"event":"message","data":{"room":{"$ne":1},"content":"x"}}"#,
                ChatErrorCode::InvalidFrame,
            ),
            (
                r#"{"event":"joinRoom","data":{"room":"a","extra":1}}"#,
                ChatErrorCode::InvalidFrame,
            ),
            (
                r#"{"event":"shutdown","data":{}}"#,
                ChatErrorCode::UnknownEvent,
            ),
        ] {
            assert_eq!(frame_command(text).map_err(|e| e.code), Err(code), "{text}");
        }
    }
}
