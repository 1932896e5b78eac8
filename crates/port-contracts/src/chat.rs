//! Contracts of `ChatBus`, `ChatHistory` and `PresenceRegistry`.

use std::time::Duration;

use chat_core::model::{ChatMessage, ConnectionId, Event, MessageId, Participant, RoomName};
use chat_core::ports::{Broadcast, ChatBus, ChatHistory, PresenceRegistry};
use chrono::TimeDelta;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use kernel::UserId;

use crate::now_ms;

const DAY: Duration = Duration::from_secs(86_400);

suite!($
    /// Runs the `ChatBus` contract: one test per behaviour.
    chat_bus_contract, chat::chat_bus_behaviours, dyn ChatBus, [
        every_subscriber_gets_every_broadcast_in_order,
        a_broadcast_keeps_its_rooms_event_and_skipped_socket,
        a_dropped_subscription_does_not_stop_the_others,
    ]
);

suite!($
    /// Runs the `ChatHistory` contract: one test per behaviour.
    chat_history_contract, chat::chat_history_behaviours, dyn ChatHistory, [
        a_room_keeps_its_latest_messages_oldest_first,
        rooms_keep_their_own_messages,
        a_room_nobody_writes_to_is_forgotten,
    ]
);

suite!($
    /// Runs the `PresenceRegistry` contract: one test per behaviour.
    presence_contract, chat::presence_behaviours, dyn PresenceRegistry, [
        the_first_socket_arrives_and_the_last_departs,
        addresses_are_counted_apart_from_users,
        users_are_counted_apart,
    ]
);

fn message(room: &RoomName, content: &str, seconds: i64) -> ChatMessage {
    ChatMessage {
        id: MessageId::generate(),
        room: room.clone(),
        user_id: UserId::generate(),
        display_name: "Ada Lovelace".into(),
        content: content.into(),
        timestamp: now_ms() + TimeDelta::seconds(seconds),
    }
}

fn broadcast(room: &str, content: &str) -> Broadcast {
    let room = RoomName::parse(room).unwrap();
    Broadcast {
        event: Event::Message(message(&room, content, 0)),
        rooms: vec![room],
        skip: None,
    }
}

/// The next broadcast of `stream`, failing after a few seconds rather than hanging.
async fn next(stream: &mut BoxStream<'static, Broadcast>) -> Broadcast {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("a broadcast arrives")
        .expect("the subscription stays open")
}

// `ChatBus`

async fn every_subscriber_gets_every_broadcast_in_order(bus: &dyn ChatBus) {
    let mut first = bus.subscribe().await.unwrap();
    let mut second = bus.subscribe().await.unwrap();
    let sent: Vec<_> = (0..20)
        .map(|n| broadcast("general", &format!("m{n}")))
        .collect();
    for one in &sent {
        bus.publish(one.clone()).await.unwrap();
    }
    for subscriber in [&mut first, &mut second] {
        for one in &sent {
            assert_eq!(&next(subscriber).await, one);
        }
    }
}

async fn a_broadcast_keeps_its_rooms_event_and_skipped_socket(bus: &dyn ChatBus) {
    let mut subscriber = bus.subscribe().await.unwrap();
    let ada = Participant {
        user_id: UserId::generate(),
        display_name: "Ada \u{1F680} \"Countess\"".into(),
    };
    let rooms = vec![RoomName::general(), RoomName::parse("team:alpha").unwrap()];
    let sent = Broadcast {
        rooms: rooms.clone(),
        event: Event::Typing {
            room: rooms[1].clone(),
            user: ada,
            is_typing: true,
        },
        skip: Some(ConnectionId(u64::MAX - 7)),
    };
    bus.publish(sent.clone()).await.unwrap();
    assert_eq!(next(&mut subscriber).await, sent);
}

async fn a_dropped_subscription_does_not_stop_the_others(bus: &dyn ChatBus) {
    let dropped = bus.subscribe().await.unwrap();
    let mut kept = bus.subscribe().await.unwrap();
    drop(dropped);
    let sent = broadcast("general", "still here");
    bus.publish(sent.clone()).await.unwrap();
    assert_eq!(next(&mut kept).await, sent);
}

// `ChatHistory`

async fn a_room_keeps_its_latest_messages_oldest_first(history: &dyn ChatHistory) {
    let room = RoomName::parse("history-room").unwrap();
    let sent: Vec<_> = (0..8)
        .map(|n| message(&room, &format!("m{n}"), n))
        .collect();
    for one in &sent {
        history.append(one, 5, DAY).await.unwrap();
    }
    assert_eq!(
        history.recent(&room, 100).await.unwrap(),
        sent[3..].to_vec()
    );
    assert_eq!(history.recent(&room, 2).await.unwrap(), sent[6..].to_vec());
}

async fn rooms_keep_their_own_messages(history: &dyn ChatHistory) {
    let (a, b) = (RoomName::parse("a").unwrap(), RoomName::parse("b").unwrap());
    let in_a = message(&a, "in a", 0);
    history.append(&in_a, 100, DAY).await.unwrap();
    assert_eq!(history.recent(&a, 10).await.unwrap(), vec![in_a]);
    assert!(history.recent(&b, 10).await.unwrap().is_empty());
}

async fn a_room_nobody_writes_to_is_forgotten(history: &dyn ChatHistory) {
    let (quiet, busy) = (
        RoomName::parse("quiet").unwrap(),
        RoomName::parse("busy").unwrap(),
    );
    let idle = Duration::from_millis(300);
    history
        .append(&message(&quiet, "once", 0), 100, idle)
        .await
        .unwrap();
    history
        .append(&message(&busy, "first", 0), 100, idle)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = message(&busy, "again", 1);
    history.append(&again, 100, idle).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(history.recent(&quiet, 10).await.unwrap().is_empty(), "idle");
    let again = message(&quiet, "again", 2);
    history.append(&again, 100, idle).await.unwrap();
    assert_eq!(
        history.recent(&quiet, 10).await.unwrap(),
        vec![again],
        "written again, an idle room starts afresh"
    );
    assert_eq!(
        history.recent(&busy, 10).await.unwrap().len(),
        2,
        "each message keeps its room"
    );
}

// `PresenceRegistry`

async fn the_first_socket_arrives_and_the_last_departs(presence: &dyn PresenceRegistry) {
    let ada = UserId::generate();
    assert_eq!(presence.arrive(&ada).await.unwrap(), 1, "first socket");
    assert_eq!(presence.arrive(&ada).await.unwrap(), 2);
    assert!(!presence.depart(&ada).await.unwrap(), "one still open");
    assert!(presence.depart(&ada).await.unwrap(), "last socket");
    assert_eq!(presence.arrive(&ada).await.unwrap(), 1, "first again");
}

async fn addresses_are_counted_apart_from_users(presence: &dyn PresenceRegistry) {
    let ada = UserId::generate();
    presence.arrive(&ada).await.unwrap();
    assert_eq!(presence.address_arrives("192.0.2.1").await.unwrap(), 1);
    assert_eq!(presence.address_arrives("192.0.2.1").await.unwrap(), 2);
    assert_eq!(presence.address_arrives("192.0.2.2").await.unwrap(), 1);
    presence.address_departs("192.0.2.1").await.unwrap();
    assert_eq!(presence.address_arrives("192.0.2.1").await.unwrap(), 2);
    assert_eq!(presence.arrive(&ada).await.unwrap(), 2, "users apart");
}

async fn users_are_counted_apart(presence: &dyn PresenceRegistry) {
    let (ada, bob) = (UserId::generate(), UserId::generate());
    presence.arrive(&ada).await.unwrap();
    assert_eq!(presence.arrive(&bob).await.unwrap(), 1);
    assert!(presence.depart(&bob).await.unwrap());
    assert!(presence.depart(&ada).await.unwrap());
}
