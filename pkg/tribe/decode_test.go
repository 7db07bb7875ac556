package tribe

import (
	"encoding/json"
	"testing"
)

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"@odata.context":"$metadata#OData.Relation_Person","value":[{"ID":"b724d383-bb70-480a-b03d-512b9aaec15a","_Type":"Relation.Person","IsActive":null,"Number":null,"LastName":"Tester","CreationDate":"2022-09-27T08:34:26Z"}]}`))
	f.Add([]byte(`{"value":[],"@odata.nextLink":"https://api.tribecrm.nl/v1/odata/Product?$skiptoken=5","@odata.count":7}`))
	f.Add([]byte(`{"error":{"code":"x","message":"y"}}`))
	f.Add([]byte(`{"value":[{"SalesPrice":12.345678901234567890,"Unit":{"Code":"HOUR"}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePage(b)
		if err != nil {
			return
		}
		cfg := &Config{ExternalIDField: "ImportId", InvoiceDateField: "InvoiceDate", DueDateField: "DueDate"}
		for _, v := range p.Values {
			if !json.Valid(v) {
				t.Fatal("invalid value passed")
			}
			_, _ = decodeEntity[Person](cfg, v)
			_, _ = decodeEntity[Invoice](cfg, v)
			_, _ = decodeEntity[Product](cfg, v)
		}
	})
}
