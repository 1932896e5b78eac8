//! The chat rules over the in-process bus, history and presence, with a hand-driven clock.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::sync::{Arc, Mutex};

use chat_core::model::{ChatErrorCode, Command, Event, Participant, RoomName, Status};
use chat_core::ports::ChatBus as _;
use chat_core::{ChatConnection, ChatLimits, ChatPorts, ChatService, Hub, HubLimits};
use chrono::{DateTime, TimeDelta, Utc};
use futures_channel::mpsc::TryRecvError;
use kernel::{Clock, UserId};
use store_memory::{MemoryChatBus, MemoryChatHistory, MemoryPresence, MemoryRateLimiter};

struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

struct Chat {
    service: Arc<ChatService>,
    clock: Arc<ManualClock>,
}

async fn chat(limits: ChatLimits) -> Chat {
    let hub = Hub::new(
        1,
        HubLimits {
            per_user: 5,
            per_address: 50,
            queue: 64,
        },
    );
    let bus = Arc::new(MemoryChatBus::default());
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    let service = Arc::new(ChatService::new(
        hub.clone(),
        ChatPorts {
            bus: bus.clone(),
            history: Arc::new(MemoryChatHistory::default()),
            presence: Arc::new(MemoryPresence::default()),
            clock: clock.clone(),
            limiter: Arc::new(MemoryRateLimiter::with_clock(
                std::time::Duration::from_secs(3600),
                1_000,
                clock.clone(),
            )),
        },
        limits,
    ));
    tokio::spawn(hub.run(bus.subscribe().await.unwrap()));
    Chat { service, clock }
}

fn person(name: &str) -> Participant {
    Participant {
        user_id: UserId::generate(),
        display_name: name.to_owned(),
    }
}

async fn open(chat: &Chat, who: &Participant) -> ChatConnection {
    let (connection, connected) = chat.service.open(who.clone(), "127.0.0.1").await.unwrap();
    assert_eq!(
        connected,
        Event::Connected {
            user_id: who.user_id.clone(),
            rooms: vec![RoomName::general()]
        }
    );
    connection
}

/// Every event the socket has been sent so far, once the bus has carried them.
async fn drain(connection: &mut ChatConnection) -> Vec<Event> {
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut events = Vec::new();
    while let Ok(delivery) = connection.registration.events.try_recv() {
        events.push(delivery.event().clone());
    }
    events
}

async fn command(
    chat: &Chat,
    connection: &ChatConnection,
    command: Command,
) -> Result<Vec<Event>, ChatErrorCode> {
    chat.service
        .handle(connection, Ok(command))
        .await
        .map_err(|e| e.code)
}

fn join(room: &str) -> Command {
    Command::JoinRoom { room: room.into() }
}

fn say(room: &str, content: &str) -> Command {
    Command::Message {
        room: room.into(),
        content: content.into(),
    }
}

#[tokio::test]
async fn a_room_hears_who_arrives_and_a_user_is_online_once() {
    let chat = chat(ChatLimits::default()).await;
    let (ada, bob) = (person("Ada"), person("Bob"));
    let mut adas = open(&chat, &ada).await;
    let _bobs = open(&chat, &bob).await;
    let events = drain(&mut adas).await;
    assert_eq!(
        events,
        vec![
            Event::Presence {
                user: bob.clone(),
                status: Status::Online
            },
            Event::UserJoined {
                room: RoomName::general(),
                user: bob.clone()
            },
        ]
    );
    let _bobs_second = open(&chat, &bob).await;
    assert_eq!(
        drain(&mut adas).await,
        vec![Event::UserJoined {
            room: RoomName::general(),
            user: bob
        }],
        "no second online for a second socket"
    );
}

#[tokio::test]
async fn messages_reach_the_room_only_and_are_kept_for_history() {
    let chat = chat(ChatLimits::default()).await;
    let (ada, bob, eve) = (person("Ada"), person("Bob"), person("Eve"));
    let mut adas = open(&chat, &ada).await;
    let mut bobs = open(&chat, &bob).await;
    let mut eves = open(&chat, &eve).await;
    assert_eq!(
        command(&chat, &adas, say("team", "hi")).await,
        Err(ChatErrorCode::NotInRoom)
    );
    command(&chat, &adas, join("team")).await.unwrap();
    command(&chat, &bobs, join("team")).await.unwrap();
    drain(&mut adas).await;
    drain(&mut eves).await;
    let emoji = "\u{1F680}".repeat(2000);
    command(&chat, &adas, say("team", &emoji)).await.unwrap();
    for socket in [&mut adas, &mut bobs] {
        let events = drain(socket).await;
        let Some(Event::Message(message)) = events.last() else {
            panic!("{events:?}");
        };
        assert_eq!(
            (
                message.content.as_str(),
                message.user_id.clone(),
                message.display_name.as_str()
            ),
            (emoji.as_str(), ada.user_id.clone(), "Ada")
        );
    }
    assert!(drain(&mut eves).await.is_empty(), "not in the room");
    let history = command(
        &chat,
        &bobs,
        Command::History {
            room: "team".into(),
            limit: None,
        },
    )
    .await
    .unwrap();
    let [Event::History { messages, .. }] = history.as_slice() else {
        panic!("{history:?}");
    };
    assert_eq!(messages.len(), 1);
    assert_eq!(
        command(
            &chat,
            &eves,
            Command::History {
                room: "team".into(),
                limit: None
            }
        )
        .await,
        Err(ChatErrorCode::NotInRoom),
        "no reading a room from outside"
    );
}

#[tokio::test]
async fn bad_commands_are_refused_with_a_code_and_change_nothing() {
    let chat = chat(ChatLimits::default()).await;
    let adas = open(&chat, &person("Ada")).await;
    for (bad, code) in [
        (say("general", ""), ChatErrorCode::ValidationError),
        (say("general", "   "), ChatErrorCode::ValidationError),
        (
            say("general", &"x".repeat(2001)),
            ChatErrorCode::ValidationError,
        ),
        (join("two words"), ChatErrorCode::ValidationError),
        (
            Command::LeaveRoom {
                room: "never-joined".into(),
            },
            ChatErrorCode::NotInRoom,
        ),
        (
            Command::Presence {
                status: "offline".into(),
            },
            ChatErrorCode::ValidationError,
        ),
        (
            Command::History {
                room: "general".into(),
                limit: Some(101),
            },
            ChatErrorCode::ValidationError,
        ),
    ] {
        assert_eq!(
            command(&chat, &adas, bad.clone()).await,
            Err(code),
            "{bad:?}"
        );
    }
    let history = command(
        &chat,
        &adas,
        Command::History {
            room: "general".into(),
            limit: Some(100),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        history,
        vec![Event::History {
            room: RoomName::general(),
            messages: vec![]
        }]
    );
}

#[tokio::test]
async fn typing_is_shown_to_the_others_only() {
    let chat = chat(ChatLimits::default()).await;
    let (ada, bob) = (person("Ada"), person("Bob"));
    let mut adas = open(&chat, &ada).await;
    let mut bobs = open(&chat, &bob).await;
    drain(&mut adas).await;
    command(
        &chat,
        &adas,
        Command::Typing {
            room: "general".into(),
            is_typing: true,
        },
    )
    .await
    .unwrap();
    assert!(drain(&mut adas).await.is_empty());
    assert_eq!(
        drain(&mut bobs).await.last(),
        Some(&Event::Typing {
            room: RoomName::general(),
            user: ada,
            is_typing: true
        })
    );
}

#[tokio::test]
async fn the_rate_limit_counts_every_frame_of_every_socket_of_the_user() {
    let chat = chat(ChatLimits {
        per_minute: 3,
        per_hour: 5,
        ..ChatLimits::default()
    })
    .await;
    let ada = person("Ada");
    let first = open(&chat, &ada).await;
    let second = open(&chat, &ada).await;
    command(&chat, &first, say("general", "1")).await.unwrap();
    let unreadable = chat
        .service
        .handle(
            &second,
            Err(chat_core::model::ChatError::new(
                ChatErrorCode::InvalidFrame,
                "not JSON",
            )),
        )
        .await;
    assert_eq!(
        unreadable.map_err(|e| e.code),
        Err(ChatErrorCode::InvalidFrame)
    );
    command(&chat, &second, say("general", "3")).await.unwrap();
    let refused = chat
        .service
        .handle(&first, Ok(say("general", "4")))
        .await
        .unwrap_err();
    assert_eq!(refused.code, ChatErrorCode::TooManyRequests);
    assert!(refused.closes());
    *chat.clock.0.lock().unwrap() += TimeDelta::minutes(1);
    command(&chat, &first, say("general", "5")).await.unwrap();
    assert_eq!(
        command(&chat, &first, say("general", "6")).await,
        Err(ChatErrorCode::TooManyRequests),
        "the hourly limit holds across minutes"
    );
}

#[tokio::test]
async fn leaving_and_closing_are_announced_and_offline_comes_with_the_last_socket() {
    let chat = chat(ChatLimits::default()).await;
    let (ada, bob) = (person("Ada"), person("Bob"));
    let mut adas = open(&chat, &ada).await;
    let bobs_first = open(&chat, &bob).await;
    let bobs_second = open(&chat, &bob).await;
    command(&chat, &bobs_first, join("team")).await.unwrap();
    command(
        &chat,
        &bobs_first,
        Command::LeaveRoom {
            room: "team".into(),
        },
    )
    .await
    .unwrap();
    drain(&mut adas).await;
    chat.service.close(bobs_first).await;
    assert_eq!(
        drain(&mut adas).await,
        vec![Event::UserLeft {
            room: RoomName::general(),
            user: bob.clone()
        }]
    );
    chat.service.close(bobs_second).await;
    assert_eq!(
        drain(&mut adas).await,
        vec![
            Event::UserLeft {
                room: RoomName::general(),
                user: bob.clone()
            },
            Event::Presence {
                user: bob,
                status: Status::Offline
            }
        ]
    );
    assert_eq!(chat.service.hub().len(), 1);
    assert!(
        matches!(
            adas.registration.events.try_recv(),
            Err(TryRecvError::Empty)
        ),
        "ada's socket is still open"
    );
}
