package jetstream_test

import (
	"fmt"
	"time"

	"github.com/cityhub/cityhub/events"
	"github.com/cityhub/cityhub/events/jetstream"
	"github.com/cityhub/cityhub/graph"
)

// The message a replica publishes for a batch that deleted a street
// light: its change events and the node's state before, typed.
func ExampleEncodeBatch() {
	at := time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)
	data, err := jetstream.EncodeBatch(events.Batch{
		Changes: []graph.Change{{Seq: 221, Op: graph.OpDelete, ID: "sl-340-27", Class: "StreetLight", At: at}},
		Deleted: map[string]*graph.Node{"sl-340-27": {ID: "sl-340-27", Class: "StreetLight",
			Props: map[string]any{"poleNumber": "340-27", "lampCount": int64(1), "powerRatingW": 100.0}}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(data))
	b, err := jetstream.DecodeBatch(data)
	if err != nil {
		fmt.Println(err)
		return
	}
	p := b.Deleted["sl-340-27"].Props
	fmt.Printf("%T %T %v\n", p["lampCount"], p["powerRatingW"], b.Changes[0].At.Equal(at))
	fmt.Println(jetstream.MsgID(b.Changes[0].Seq))
	// Output:
	// {"v":1,"changes":[{"seq":221,"op":"DELETE","id":"sl-340-27","class":"StreetLight","changed":null,"at":"2024-05-01T10:00:00.123456789Z"}],"deleted":{"sl-340-27":{"id":"sl-340-27","class":"StreetLight","props":{"lampCount":{"i":"1"},"poleNumber":{"s":"340-27"},"powerRatingW":{"f":"100"}},"geometry":null,"prov":{"sources":null}}}}
	// int64 float64 true
	// cityhub-seq-221
}
