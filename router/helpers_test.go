package router_test

import (
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

func newMessage(payload []byte) *message.Message {
	return message.NewMessage(watermill.NewUUID(), payload)
}
